// The open room: entering and leaving it, its STOMP subscriptions, who is online, and the
// controls of the conversation pane.
import { editLastMessage } from "./actions.js";
import { api } from "./api.js";
import { $, showStatus } from "./dom.js";
import {
  PAGE_SIZE,
  addMessages,
  fillScreen,
  loadOlder,
  markRead,
  messageArrived,
  renderHistoryState,
  renderSeenBy,
  scrollToEnd,
  sendMessage,
  updateMessage,
} from "./messages.js";
import { person } from "./people.js";
import { bindRoomHeader, closeHeader, renderHeader } from "./roomheader.js";
import { onOpenRoom, onRoomChosen, renderRooms, roomRemoved } from "./rooms.js";
import { state } from "./state.js";
import { composerInput, forgetTyping, renderTyping, stopTyping, sweepTyping, typingChanged } from "./typing.js";

const ROOM_TOPICS = ["message", "message-updates", "readMarkers", "onlineStatus", "typing"];

export function showRoomPane(open) {
  $("chat-view").classList.toggle("room-open", open);
  $("composer").hidden = !open;
  $("messages").hidden = !open;
  $("room-placeholder").hidden = open;
}

// Closing the open room's pane. `revoked`: we are no longer in the room, and the server ends its
// subscriptions and refuses typing into it itself.
function leaveRoom(revoked) {
  const room = state.room;
  if (!room) return;
  if (revoked) forgetTyping();
  else stopTyping();
  for (const topic of ROOM_TOPICS) {
    if (revoked) state.stomp.forget(topic + "-" + room.id);
    else state.stomp.unsubscribe(topic + "-" + room.id);
  }
  clearInterval(room.typingSweep);
  closeHeader();
  state.room = null;
}

// The open room is no longer ours: the conversation closes, and the notice says why.
function roomLost(roomId, notice) {
  if (!state.room || state.room.id !== roomId) return;
  leaveRoom(true);
  showRoomPane(false);
  $("message-list").replaceChildren();
  $("room-placeholder").textContent = notice;
  renderRooms();
}

// The open room's view changed: its name, or who is in it.
function viewChanged(view) {
  const room = state.room;
  const before = room.participantIds.join(",");
  room.participantIds = view.participantIds;
  renderHeader(room);
  if (before !== room.participantIds.join(",")) {
    loadNames(room);
    loadRoomStatus(room);
  }
}

function newRoom(roomId, view) {
  return {
    id: roomId,
    order: [],
    messages: new Map(),
    senders: new Map(),
    newestId: 0,
    exhausted: false,
    loading: null,
    markers: new Map(),
    online: new Map(),
    typing: new Map(),
    names: new Map(),
    participantIds: view ? view.participantIds : [],
  };
}

export async function openRoom(roomId) {
  const focusedAtOpen = document.activeElement;
  leaveRoom();
  const view = state.rooms.get(roomId);
  const room = newRoom(roomId, view);
  state.room = room;
  state.pendingSend = null;
  $("room-placeholder").textContent = "Choose a room.";
  renderHeader(room);
  $("typing").textContent = "";
  $("message-list").replaceChildren();
  $("composer-input").value = "";
  renderHistoryState(room);
  renderRooms();
  showRoomPane(true);
  try {
    const answer = await api("GET", "/query/message/roomId/" + roomId);
    if (state.room !== room) return;
    addMessages(room, answer.data);
    room.exhausted = answer.data.length < PAGE_SIZE;
  } catch (error) {
    showStatus(error.message);
    return;
  }
  subscribeRoom(room);
  loadNames(room);
  loadRoomStatus(room);
  scrollToEnd();
  renderHistoryState(room);
  // To the composer, unless the person moved the focus while the history loaded (tabbing to
  // the header's controls, say): taking it from them would send their next keys elsewhere.
  const active = document.activeElement;
  if (active === focusedAtOpen || active === document.body || active === null) $("composer-input").focus();
  await fillScreen(room);
  markRead(room);
}

function subscribeRoom(room) {
  const id = room.id;
  const on = (topic, received, headers) =>
    state.stomp.subscribe(topic + "-" + id, "/topic/" + topic + "/roomId/" + id, received, headers, () =>
      // The server ended it (an ERROR frame naming it): we are no longer in the room.
      roomRemoved({ roomId: id }),
    );
  on("message", (m) => messageArrived(room, m), () => ({ "since-message-id": String(room.newestId) }));
  // Edits, deletions and reactions: the whole message as it now is, drawn again in place.
  on("message-updates", (update) => updateMessage(room, update.message));
  on("readMarkers", (marker) => {
    room.markers.set(marker.customerId, Math.max(room.markers.get(marker.customerId) || 0, marker.lastReadMessageId));
    renderSeenBy(room);
  });
  on("onlineStatus", (status) => {
    room.online.set(status.customerId, status.online);
    renderHeader(room);
  });
  on("typing", (event) => typingChanged(room, event));
  room.typingSweep = setInterval(() => sweepTyping(room), 1000);
}

async function loadNames(room) {
  await Promise.all(
    room.participantIds
      .filter((customerId) => !room.names.has(customerId))
      .map(async (customerId) => {
        const found = await person(customerId);
        room.names.set(customerId, found.fullName);
      }),
  );
  renderSeenBy(room);
  renderTyping(room);
  renderHeader(room);
}

export async function loadRoomStatus(room) {
  try {
    const [online, markers] = await Promise.all([
      api("GET", "/query/onlineStatus/roomId/" + room.id),
      api("GET", "/query/readMarkers/roomId/" + room.id),
    ]);
    for (const status of online.data) room.online.set(status.customerId, status.online);
    for (const marker of markers.data) {
      const known = room.markers.get(marker.customerId) || 0;
      room.markers.set(marker.customerId, Math.max(known, marker.lastReadMessageId || 0));
    }
    renderHeader(room);
    renderSeenBy(room);
  } catch (error) {
    showStatus(error.message);
  }
}


export function bindConversation() {
  onRoomChosen(openRoom);
  onOpenRoom({ changed: viewChanged, lost: roomLost });
  bindRoomHeader();
  $("composer").addEventListener("submit", sendMessage);
  $("composer-input").addEventListener("input", composerInput);
  $("composer-input").addEventListener("blur", stopTyping);
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else if (event.key === "ArrowUp" && !event.target.value && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
      if (editLastMessage()) event.preventDefault();
    }
  });
  $("messages").addEventListener("scroll", () => {
    if (state.room && $("messages").scrollTop < 80) loadOlder(state.room);
  });
  $("older-button").addEventListener("click", () => state.room && loadOlder(state.room));
  $("back-button").addEventListener("click", () => {
    leaveRoom();
    showRoomPane(false);
    renderRooms();
  });
  document.addEventListener("visibilitychange", () => state.room && markRead(state.room));
}

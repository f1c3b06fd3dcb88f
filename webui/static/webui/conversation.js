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
import { onRoomChosen, renderRooms } from "./rooms.js";
import { state } from "./state.js";
import { composerInput, renderTyping, stopTyping, sweepTyping, typingChanged } from "./typing.js";

export function showRoomPane(open) {
  $("chat-view").classList.toggle("room-open", open);
  $("composer").hidden = !open;
  $("messages").hidden = !open;
  $("room-placeholder").hidden = open;
}

function leaveRoom() {
  const room = state.room;
  if (!room) return;
  stopTyping();
  for (const topic of ["message", "message-updates", "readMarkers", "onlineStatus", "typing"]) {
    state.stomp.unsubscribe(topic + "-" + room.id);
  }
  clearInterval(room.typingSweep);
  state.room = null;
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
  leaveRoom();
  const view = state.rooms.get(roomId);
  const room = newRoom(roomId, view);
  state.room = room;
  state.pendingSend = null;
  $("room-name").textContent = view ? view.roomName : "Room " + roomId;
  $("room-online").textContent = "";
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
  $("composer-input").focus();
  await fillScreen(room);
  markRead(room);
}

function subscribeRoom(room) {
  const id = room.id;
  state.stomp.subscribe("message-" + id, "/topic/message/roomId/" + id, (m) => messageArrived(room, m), () => ({
    "since-message-id": String(room.newestId),
  }));
  // Edits, deletions and reactions: the whole message as it now is, drawn again in place.
  state.stomp.subscribe("message-updates-" + id, "/topic/message-updates/roomId/" + id, (update) =>
    updateMessage(room, update.message),
  );
  state.stomp.subscribe("readMarkers-" + id, "/topic/readMarkers/roomId/" + id, (marker) => {
    room.markers.set(marker.customerId, Math.max(room.markers.get(marker.customerId) || 0, marker.lastReadMessageId));
    renderSeenBy(room);
  });
  state.stomp.subscribe("onlineStatus-" + id, "/topic/onlineStatus/roomId/" + id, (status) => {
    room.online.set(status.customerId, status.online);
    renderOnline(room);
  });
  state.stomp.subscribe("typing-" + id, "/topic/typing/roomId/" + id, (event) => typingChanged(room, event));
  room.typingSweep = setInterval(() => sweepTyping(room), 1000);
}

async function loadNames(room) {
  await Promise.all(
    room.participantIds.map(async (customerId) => {
      const found = await person(customerId);
      room.names.set(customerId, found.fullName);
    }),
  );
  renderSeenBy(room);
  renderTyping(room);
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
    renderOnline(room);
    renderSeenBy(room);
  } catch (error) {
    showStatus(error.message);
  }
}

function renderOnline(room) {
  if (state.room !== room) return;
  const total = room.participantIds.length || room.online.size;
  const online = Array.from(room.online.values()).filter(Boolean).length;
  $("room-online").textContent = online + " of " + total + " online";
}

export function bindConversation() {
  onRoomChosen(openRoom);
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

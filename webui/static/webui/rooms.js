// The room list: fetched over HTTP, then kept current by the rooms and readStatus topics.
import { api } from "./api.js";
import { $, avatar, element, showStatus, timeOf } from "./dom.js";
import { state } from "./state.js";

// Set by the conversation module. It imports this one (to redraw the list when a room opens),
// so importing openRoom back would make an import cycle.
let chooseRoom = () => {};

export function onRoomChosen(handler) {
  chooseRoom = handler;
}

export async function loadRooms() {
  try {
    const answer = await api("GET", "/query/rooms");
    state.rooms = new Map(answer.data.map((view) => [view.roomId, view]));
    renderRooms();
  } catch (error) {
    showStatus(error.message);
  }
}

const lastId = (view) => (view && view.lastMessage ? view.lastMessage.messageId : 0);

export function roomUpdated(view) {
  const known = state.rooms.get(view.roomId);
  if (known && lastId(known) > lastId(view)) return; // an older view overtaken by a fetch
  // Room views and read statuses travel on different topics, so a view flagging the open
  // room unread may arrive after the read marker that cleared it.
  const room = state.room && state.room.id === view.roomId ? state.room : null;
  if (room && lastId(view) <= (room.markers.get(state.me.customerId) || 0)) {
    view.unreadStatus = Object.assign({}, view.unreadStatus, { [state.me.customerId]: false });
  }
  state.rooms.set(view.roomId, view);
  renderRooms();
  if (state.room && state.room.id === view.roomId) {
    state.room.participantIds = view.participantIds;
    $("room-name").textContent = view.roomName;
  }
}

export function readStatusUpdated(event) {
  const view = state.rooms.get(event.roomId);
  if (!view) return;
  view.unreadStatus = Object.assign({}, view.unreadStatus, { [event.customerId]: event.isUnread });
  renderRooms();
}

// The open room's entry in the list shows what the conversation shows, push or no push.
export function showInList(message) {
  const view = state.rooms.get(message.roomId);
  if (!view || lastId(view) >= message.messageId) return;
  const { messageId, senderId, content, sentAt } = message;
  view.lastMessage = { messageId: messageId, senderId: senderId, content: content, sentAt: sentAt };
  view.updatedAt = sentAt;
  renderRooms();
}

export function renderRooms() {
  const focused = document.activeElement && document.activeElement.dataset.roomId;
  const views = Array.from(state.rooms.values()).sort((a, b) => new Date(b.updatedAt) - new Date(a.updatedAt));
  const items = views.map(roomItem);
  $("room-list").replaceChildren(...items);
  $("no-rooms").hidden = views.length > 0;
  if (focused) {
    const again = $("room-list").querySelector('[data-room-id="' + focused + '"]');
    if (again) again.focus();
  }
}

function roomItem(view) {
  const unread = Boolean(view.unreadStatus && view.unreadStatus[state.me.customerId]);
  const button = element("button", "room-item" + (unread ? " unread" : ""));
  button.type = "button";
  button.dataset.roomId = String(view.roomId);
  if (state.room && state.room.id === view.roomId) button.setAttribute("aria-current", "true");
  const text = element("span", "room-text");
  const top = element("span", "room-top");
  top.append(element("span", "room-name", view.roomName));
  if (view.lastMessage) top.append(element("time", "muted", timeOf(view.lastMessage.sentAt)));
  const last = view.lastMessage;
  // A sent message is never empty: an empty last message was deleted.
  const shown = last && (last.content === "" ? "message deleted" : last.content);
  const preview = last ? (last.senderId === state.me.customerId ? "You: " : "") + shown : "No messages yet";
  text.append(top, element("span", "room-last muted", preview));
  button.append(avatar(view.roomName, null), text);
  if (unread) {
    const dot = element("span", "dot");
    dot.setAttribute("aria-label", "unread");
    dot.setAttribute("role", "img");
    button.append(dot);
  }
  button.addEventListener("click", () => chooseRoom(view.roomId));
  const item = element("li");
  item.append(button);
  return item;
}

// The room list: fetched over HTTP, then kept current by the rooms, rooms-removed and
// readStatus topics, with each room's unread count.
import { api } from "./api.js";
import { $, avatar, element, showStatus, timeOf } from "./dom.js";
import { state } from "./state.js";

// Set by the conversation module. It imports this one (to redraw the list when a room opens),
// so importing openRoom back would make an import cycle.
let chooseRoom = () => {};
let openViewChanged = () => {};
let openRoomLost = () => {};

export function onRoomChosen(handler) {
  chooseRoom = handler;
}

// The open room's view changed (its name or people), or the open room is no longer ours.
export function onOpenRoom({ changed, lost }) {
  openViewChanged = changed;
  openRoomLost = lost;
}

let fetches = 0; // lists asked for
let shown = 0; // the latest of them shown
// For each list on its way, what pushes changed since it was asked for (the server may have
// read it before them): room id -> "updated" or "removed".
const changesSince = new Map();

export async function loadRooms() {
  const mine = ++fetches;
  const changes = new Map();
  changesSince.set(mine, changes);
  try {
    const answer = await api("GET", "/query/rooms");
    if (mine < shown) return; // a list asked for later is shown already
    shown = mine;
    const fetched = new Map(answer.data.map((view) => [view.roomId, view]));
    // A view pushed before the list came may be newer than the list's.
    for (const [id, known] of state.rooms) {
      if (fetched.has(id) && lastId(known) > lastId(fetched.get(id))) fetched.set(id, known);
    }
    for (const [id, change] of changes) {
      const known = state.rooms.get(id);
      if (change === "removed") fetched.delete(id);
      else if (known && !fetched.has(id)) fetched.set(id, known); // added to it meanwhile
    }
    state.rooms = fetched;
    renderRooms();
  } catch (error) {
    showStatus(error.message);
  } finally {
    changesSince.delete(mine);
  }
}

function changed(roomId, change) {
  for (const changes of changesSince.values()) changes.set(roomId, change);
}

const lastId = (view) => (view && view.lastMessage ? view.lastMessage.messageId : 0);

export function roomUpdated(view) {
  const known = state.rooms.get(view.roomId);
  if (known && lastId(known) > lastId(view)) return; // an older view overtaken by a fetch
  // Room views and read statuses travel on different topics, so a view flagging the open
  // room unread may arrive after the read marker that cleared it.
  const room = state.room && state.room.id === view.roomId ? state.room : null;
  if (room && lastId(view) <= (room.markers.get(state.me.customerId) || 0)) markedRead(view);
  state.rooms.set(view.roomId, view);
  changed(view.roomId, "updated");
  renderRooms();
  if (room) openViewChanged(view);
}

// Rooms this page asked to leave. The answer to the request and the server's push that ends
// the membership race each other; whichever comes first removes the room, and says so.
const leaving = new Set();

export function leavingRoom(roomId) {
  leaving.add(roomId);
}

export function stayingInRoom(roomId) {
  leaving.delete(roomId);
}

// The room is no longer ours (removed, or left): it leaves the list, and closes if open with a
// notice that says which.
export function roomRemoved(event) {
  const view = state.rooms.get(event.roomId);
  const left = leaving.delete(event.roomId);
  state.rooms.delete(event.roomId);
  changed(event.roomId, "removed");
  renderRooms();
  if (state.room && state.room.id === event.roomId) {
    const name = view ? view.roomName : "Room " + event.roomId;
    openRoomLost(event.roomId, (left ? "You left “" : "You are no longer in “") + name + "”.");
  }
}

export function readStatusUpdated(event) {
  const view = state.rooms.get(event.roomId);
  if (!view) return;
  view.unreadStatus = Object.assign({}, view.unreadStatus, { [event.customerId]: event.isUnread });
  if (!event.isUnread) view.unreadCount = Object.assign({}, view.unreadCount, { [event.customerId]: 0 });
  renderRooms();
}

// Reading the room shows at once: the pushes that say so come later.
export function readRoom(roomId) {
  const view = state.rooms.get(roomId);
  if (!view || unreadOf(view) === 0) return;
  markedRead(view);
  renderRooms();
}

function markedRead(view) {
  const me = state.me.customerId;
  view.unreadStatus = Object.assign({}, view.unreadStatus, { [me]: false });
  view.unreadCount = Object.assign({}, view.unreadCount, { [me]: 0 });
}

// My unread count; a server without counts gives only the flag: -1 for "some".
function unreadOf(view) {
  const me = String(state.me.customerId);
  const count = view.unreadCount && view.unreadCount[me];
  if (typeof count === "number" && count > 0) return count;
  return view.unreadStatus && view.unreadStatus[me] ? -1 : 0;
}

// The open room's entry in the list shows what the conversation shows, push or no push.
export function showInList(message) {
  const view = state.rooms.get(message.roomId);
  if (!view || lastId(view) >= message.messageId) return;
  const { messageId, senderId, content, sentAt, type } = message;
  view.lastMessage = { messageId: messageId, senderId: senderId, content: content, sentAt: sentAt, type: type };
  view.updatedAt = sentAt;
  renderRooms();
}

// Each room keeps its list item and button from one drawing to the next (only what is inside
// is drawn again): a push that redraws the list between a press and its release must not eat
// the click, and the focus stays where it was.
export function renderRooms() {
  const kept = new Map(Array.from($("room-list").children, (item) => [item.firstChild.dataset.roomId, item]));
  const views = Array.from(state.rooms.values()).sort((a, b) => new Date(b.updatedAt) - new Date(a.updatedAt));
  const items = views.map((view) => roomItem(view, kept.get(String(view.roomId))));
  const list = $("room-list");
  const focused = document.activeElement;
  items.forEach((item, at) => list.children[at] !== item && list.insertBefore(item, list.children[at] || null));
  while (list.children.length > items.length) list.lastChild.remove();
  $("no-rooms").hidden = views.length > 0;
  // A room moved up (new activity) was taken out and put back, which loses the focus.
  if (focused && focused.isConnected && focused !== document.activeElement) focused.focus();
}

function roomItem(view, kept) {
  const item = kept || element("li");
  let button = item.firstChild;
  if (!button) {
    button = element("button");
    button.type = "button";
    button.dataset.roomId = String(view.roomId);
    button.addEventListener("click", () => chooseRoom(view.roomId));
    item.append(button);
  }
  const count = unreadOf(view);
  const unread = count !== 0;
  button.className = "room-item" + (unread ? " unread" : "");
  if (state.room && state.room.id === view.roomId) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
  const text = element("span", "room-text");
  const top = element("span", "room-top");
  top.append(element("span", "room-name", view.roomName));
  if (view.lastMessage) top.append(element("time", "muted", timeOf(view.lastMessage.sentAt)));
  const last = view.lastMessage;
  // A sent message is never empty: an empty last message was deleted.
  const shown = last && (last.content === "" ? "message deleted" : last.content);
  // A note (someone added, a new name) says who did it in its own words.
  const mine = last && last.senderId === state.me.customerId && last.type !== "system";
  const preview = last ? (mine ? "You: " : "") + shown : "No messages yet";
  text.append(top, element("span", "room-last muted", preview));
  button.replaceChildren(avatar(view.roomName, null), text);
  if (unread) button.append(unreadMark(count));
  return item;
}

// A count up to 999 (the server counts no further), or a dot when only the flag is known.
function unreadMark(count) {
  const known = count > 0;
  const shown = count >= 999 ? "999+" : String(count);
  const mark = element("span", known ? "badge" : "dot", known ? shown : undefined);
  mark.setAttribute("role", "img");
  mark.setAttribute("aria-label", known ? shown + " unread" : "unread");
  return mark;
}

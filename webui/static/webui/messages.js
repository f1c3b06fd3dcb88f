// The open room's messages: kept in order however they arrive, older pages on demand, read
// markers ("Seen by"), and sending.
import { api } from "./api.js";
import { $, element, showStatus, timeOf } from "./dom.js";
import { nameOf } from "./people.js";
import { showInList } from "./rooms.js";
import { state } from "./state.js";
import { renderTyping, stopTyping } from "./typing.js";

export const PAGE_SIZE = 20;

export function messageArrived(room, message) {
  if (state.room !== room) return;
  const list = $("messages");
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  addMessages(room, [message]);
  showInList(message);
  room.typing.delete(message.senderId);
  renderTyping(room);
  if (atEnd || message.senderId === state.me.customerId) scrollToEnd();
  markRead(room);
}

// Messages are kept once each, in messageId order, however and how often they arrive.
export function addMessages(room, messages) {
  const list = $("message-list");
  for (const message of messages) {
    if (room.order.includes(message.messageId)) continue;
    let at = room.order.length;
    while (at > 0 && room.order[at - 1] > message.messageId) at -= 1;
    const node = messageItem(message);
    list.insertBefore(node, list.children[at] || null);
    room.order.splice(at, 0, message.messageId);
    room.senders.set(message.messageId, message.senderId);
    room.newestId = Math.max(room.newestId, message.messageId);
  }
  renderSeenBy(room);
}

function messageItem(message) {
  const mine = message.senderId === state.me.customerId;
  const item = element("li", "message" + (mine ? " mine" : ""));
  item.dataset.messageId = String(message.messageId);
  const meta = element("div", "meta");
  meta.append(element("span", "sender", mine ? "You" : message.senderFullName));
  const time = element("time", "muted", timeOf(message.sentAt));
  time.dateTime = message.sentAt;
  meta.append(time);
  item.append(meta, element("div", "content", message.content), element("div", "seen muted"));
  return item;
}

export function renderSeenBy(room) {
  if (state.room !== room) return;
  const seenAt = new Map();
  for (const [customerId, lastRead] of room.markers) {
    if (customerId === state.me.customerId || !lastRead) continue;
    // Under the newest message they have read that is not their own.
    let shown = null;
    for (const id of room.order) if (id <= lastRead && room.senders.get(id) !== customerId) shown = id;
    if (shown === null) continue;
    if (!seenAt.has(shown)) seenAt.set(shown, []);
    seenAt.get(shown).push(nameOf(customerId, room.names));
  }
  for (const node of $("message-list").children) {
    const names = seenAt.get(Number(node.dataset.messageId));
    node.querySelector(".seen").textContent = names ? "Seen by " + names.join(", ") : "";
  }
}

export async function loadOlder(room) {
  if (room.loading || room.exhausted || !room.order.length) return;
  room.loading = true;
  renderHistoryState(room);
  const list = $("messages");
  try {
    const answer = await api("GET", "/query/message/roomId/" + room.id + "/index/" + room.order[0]);
    if (state.room !== room) return;
    const before = list.scrollHeight;
    addMessages(room, answer.data);
    list.scrollTop += list.scrollHeight - before;
    room.exhausted = answer.data.length < PAGE_SIZE;
  } catch (error) {
    showStatus(error.message);
  } finally {
    room.loading = false;
    renderHistoryState(room);
  }
}

// Without a scroll bar there is no scrolling up: load older pages until there is one.
export async function fillScreen(room) {
  const list = $("messages");
  while (state.room === room && !room.exhausted && list.scrollHeight <= list.clientHeight) {
    await loadOlder(room);
    scrollToEnd();
  }
}

export function renderHistoryState(room) {
  const button = $("older-button");
  button.disabled = room.exhausted || room.loading;
  button.textContent = room.loading
    ? "Loading older messages…"
    : room.exhausted
      ? "This is the beginning of the conversation."
      : "Load older messages";
}

export function scrollToEnd() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

export async function markRead(room) {
  if (state.room !== room || document.visibilityState !== "visible" || !room.newestId) return;
  const mine = room.markers.get(state.me.customerId) || 0;
  if (room.newestId <= mine) return;
  room.markers.set(state.me.customerId, room.newestId);
  try {
    await api("POST", "/command/read", { roomId: room.id, messageId: room.newestId });
  } catch (error) {
    room.markers.set(state.me.customerId, mine);
    showStatus(error.message);
  }
}

export async function sendMessage(event) {
  event.preventDefault();
  const room = state.room;
  const input = $("composer-input");
  const content = input.value;
  if (!room || !content.trim()) return;
  // The same text sent again after a failure reuses its key, so it is stored once.
  if (!state.pendingSend || state.pendingSend.content !== content || state.pendingSend.roomId !== room.id) {
    state.pendingSend = { content: content, roomId: room.id, key: randomKey() };
  }
  stopTyping();
  try {
    const answer = await api("POST", "/command/message", {
      roomId: room.id,
      content: content,
      clientMessageId: state.pendingSend.key,
    });
    state.pendingSend = null;
    if (input.value === content) input.value = "";
    const sent = answer.data;
    messageArrived(room, {
      messageId: sent.messageId,
      roomId: room.id,
      senderId: state.me.customerId,
      senderFullName: state.me.fullName,
      content: content,
      sentAt: sent.sentAt,
    });
  } catch (error) {
    showStatus(error.message);
  }
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

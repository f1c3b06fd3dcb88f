// The open room's messages: kept in order however they arrive, older pages on demand, read
// markers ("Seen by"), and sending.
import { api } from "./api.js";
import { $, element, showStatus, timeOf } from "./dom.js";
import { nameOf } from "./people.js";
import { readRoom, showInList } from "./rooms.js";
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
    if (room.messages.has(message.messageId)) continue;
    let at = room.order.length;
    while (at > 0 && room.order[at - 1] > message.messageId) at -= 1;
    list.insertBefore(messageItem(room, message), list.children[at] || null);
    room.order.splice(at, 0, message.messageId);
    room.messages.set(message.messageId, message);
    room.senders.set(message.messageId, message.senderId);
    room.newestId = Math.max(room.newestId, message.messageId);
  }
  renderSeenBy(room);
}

// An edit, a deletion or new reactions: the message is drawn again where it is. An edit in
// progress and an open reaction picker survive (they move into the new drawing), and so does
// the focus.
export function updateMessage(room, message) {
  if (state.room !== room || !room.messages.has(message.messageId)) return;
  room.messages.set(message.messageId, message);
  const old = messageNode(message.messageId);
  const node = messageItem(room, message);
  const editor = old.querySelector(".editor");
  const picker = old.querySelector(".picker");
  if (editor && !message.deleted) {
    node.querySelector(".content").replaceWith(editor);
    node.classList.add("editing");
  }
  if (picker && !message.deleted) {
    node.querySelector(".reactions").append(picker);
    node.querySelector(".add-reaction").setAttribute("aria-expanded", "true");
  }
  if (old.classList.contains("highlight")) node.classList.add("highlight");
  const focused = old.contains(document.activeElement) ? document.activeElement : null;
  old.replaceWith(node);
  if (focused && node.contains(focused)) focused.focus();
  else if (focused) (node.querySelector('[data-key="' + focused.dataset.key + '"]') || node).focus();
  renderSeenBy(room);
}

export function messageNode(messageId) {
  return $("message-list").querySelector('[data-message-id="' + messageId + '"]');
}

export const isSystem = (message) => message.type === "system";

function messageItem(room, message) {
  if (isSystem(message)) return noteItem(message);
  const mine = message.senderId === state.me.customerId;
  const item = element("li", "message" + (mine ? " mine" : "") + (message.deleted ? " deleted" : ""));
  item.dataset.messageId = String(message.messageId);
  item.tabIndex = -1; // a search result's message takes the focus
  const meta = element("div", "meta");
  meta.append(element("span", "sender", mine ? "You" : message.senderFullName));
  const time = element("time", "muted", timeOf(message.sentAt));
  time.dateTime = message.sentAt;
  meta.append(time);
  if (message.editedAt && !message.deleted) {
    const edited = element("span", "edited muted", "edited");
    edited.title = "Edited " + new Date(message.editedAt).toLocaleString();
    meta.append(edited);
  }
  const content = message.deleted ? element("div", "content", "message deleted") : element("div", "content", message.content);
  item.append(meta, content);
  if (!message.deleted) item.append(reactionBar(room, message), toolbar(mine));
  item.append(element("div", "seen muted"));
  return item;
}

// What happened to the room (people added, removed or leaving, a new name): a centred note in
// the history, sent in someone's name but nobody's message, so it has no bubble and no actions.
function noteItem(message) {
  const item = element("li", "message system");
  item.dataset.messageId = String(message.messageId);
  item.tabIndex = -1;
  const time = element("time", "muted", timeOf(message.sentAt));
  time.dateTime = message.sentAt;
  item.append(element("span", "note", message.content), time, element("div", "seen muted"));
  return item;
}

// Each kind of reaction with its count, the current person's own pressed; a click toggles it.
function reactionBar(room, message) {
  const bar = element("div", "reactions");
  for (const reaction of message.reactions || []) {
    const given = reaction.customerIds.includes(state.me.customerId);
    const count = reaction.customerIds.length;
    const button = actionButton("reaction" + (given ? " given" : ""), "toggle-reaction", reaction.emoji + " " + count);
    button.dataset.emoji = reaction.emoji;
    button.dataset.key = "reaction " + reaction.emoji;
    button.setAttribute("aria-pressed", String(given));
    button.setAttribute("aria-label", reaction.emoji + " " + count + (given ? ", yours" : ""));
    button.title = reaction.customerIds.map((id) => nameOf(id, room.names)).join(", ");
    bar.append(button);
  }
  return bar;
}

// Shown on hover or focus: react to any message; edit and delete one's own.
function toolbar(mine) {
  const bar = element("div", "message-actions");
  const add = actionButton("add-reaction quiet", "pick-reaction", "☺+");
  add.setAttribute("aria-label", "Add reaction");
  add.setAttribute("aria-haspopup", "true");
  add.setAttribute("aria-expanded", "false");
  bar.append(add);
  if (mine) bar.append(actionButton("quiet", "edit", "Edit"), actionButton("quiet", "delete", "Delete"));
  return bar;
}

function actionButton(className, action, text) {
  const button = element("button", className, text);
  button.type = "button";
  button.dataset.action = action;
  button.dataset.key = action;
  return button;
}

export function renderSeenBy(room) {
  if (state.room !== room) return;
  const seenAt = new Map();
  for (const [customerId, lastRead] of room.markers) {
    if (customerId === state.me.customerId || !lastRead) continue;
    // Under the newest message they have read that is not their own (nor a note).
    let shown = null;
    for (const id of room.order) {
      if (id <= lastRead && room.senders.get(id) !== customerId && !isSystem(room.messages.get(id))) shown = id;
    }
    if (shown === null) continue;
    if (!seenAt.has(shown)) seenAt.set(shown, []);
    seenAt.get(shown).push(nameOf(customerId, room.names));
  }
  for (const node of $("message-list").children) {
    const names = seenAt.get(Number(node.dataset.messageId));
    node.querySelector(".seen").textContent = names ? "Seen by " + names.join(", ") : "";
  }
}

// One load at a time; a second call waits for the one under way.
export function loadOlder(room) {
  if (!room.loading && !room.exhausted && room.order.length) {
    room.loading = loadPage(room);
    renderHistoryState(room);
  }
  return room.loading || Promise.resolve();
}

async function loadPage(room) {
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
    room.loading = null;
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
  button.disabled = Boolean(room.exhausted || room.loading);
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
  readRoom(room.id);
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

// A search result: older pages come in until the message is there (or the history ends),
// then it is scrolled to, highlighted and focused.
export async function showMessage(room, messageId) {
  while (state.room === room && !room.messages.has(messageId) && !room.exhausted) {
    const shown = room.order.length;
    await loadOlder(room);
    if (room.order.length === shown) break; // a failed load was reported; do not spin
  }
  const node = state.room === room ? messageNode(messageId) : null;
  if (!node) {
    if (state.room === room) showStatus("That message is no longer in this room.");
    return;
  }
  for (const old of $("message-list").querySelectorAll(".highlight")) old.classList.remove("highlight");
  node.classList.add("highlight");
  node.scrollIntoView({ block: "center" });
  node.focus({ preventScroll: true });
}

// After a reconnection: edits, deletions and reactions that happened meanwhile are not
// replayed with the missed messages, so the pages already shown are fetched again.
export async function refreshShown(room) {
  let before = null;
  while (state.room === room && room.order.length) {
    const path = "/query/message/roomId/" + room.id + (before ? "/index/" + before : "");
    let answer;
    try {
      answer = await api("GET", path);
    } catch (error) {
      showStatus(error.message);
      return;
    }
    for (const message of answer.data) updateMessage(room, message);
    if (answer.data.length < PAGE_SIZE) return;
    before = answer.data[answer.data.length - 1].messageId;
    if (before <= room.order[0]) return;
  }
}

// What a person does to a message: edit and delete their own (hover or focus shows the
// buttons), and react to anyone's with an emoji. The buttons live in each message's drawing
// (messages.js); one listener on the list handles them all, so a redrawn message needs no wiring.
import { api } from "./api.js";
import { $, element, showStatus } from "./dom.js";
import { isSystem, messageNode, updateMessage } from "./messages.js";
import { state } from "./state.js";

export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

let pendingDelete = null;

function messageOf(node) {
  const item = node.closest(".message");
  const room = state.room;
  const message = item && room ? room.messages.get(Number(item.dataset.messageId)) : null;
  return message ? { room: room, item: item, message: message } : null;
}

// --- Editing --------------------------------------------------------------------------

function startEdit(found, returnTo) {
  for (const open of $("message-list").querySelectorAll(".editor")) cancelEdit(open);
  const form = element("form", "editor");
  form.returnTo = returnTo;
  const input = element("textarea", "editor-input");
  input.value = found.message.content;
  input.rows = Math.min(6, input.value.split("\n").length);
  input.maxLength = 4000;
  input.setAttribute("aria-label", "Edit message");
  const actions = element("div", "editor-actions");
  const cancel = element("button", "quiet", "Cancel");
  cancel.type = "button";
  cancel.dataset.action = "cancel-edit";
  actions.append(element("span", "muted", "Enter to save, Escape to cancel"), cancel, element("button", "", "Save"));
  form.append(input, actions);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveEdit(form);
  });
  found.item.querySelector(".content").replaceWith(form);
  found.item.classList.add("editing");
  found.item.scrollIntoView({ block: "nearest" });
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function closeEdit(editor, message) {
  const found = messageOf(editor);
  const returnTo = editor.returnTo;
  editor.remove();
  if (found) updateMessage(found.room, message || found.message);
  const node = found && messageNode(found.message.messageId);
  if (returnTo === "composer" || !node) $("composer-input").focus();
  else (node.querySelector('[data-action="edit"]') || node).focus();
}

function cancelEdit(editor) {
  closeEdit(editor, null);
}

async function saveEdit(editor) {
  const found = messageOf(editor);
  if (!found) return;
  const content = editor.querySelector("textarea").value;
  if (content === found.message.content) return cancelEdit(editor);
  if (!content.trim()) {
    showStatus("A message cannot be empty: use Delete to remove it.");
    return;
  }
  try {
    const answer = await api("PATCH", "/command/message/" + found.message.messageId, { content: content });
    const now = found.room.messages.get(found.message.messageId);
    const editedAt = answer.data.editedAt || now.editedAt;
    if (editor.isConnected) closeEdit(editor, Object.assign({}, now, { content: content, editedAt: editedAt }));
  } catch (error) {
    showStatus(error.message);
  }
}

// Up arrow in an empty composer: the newest message of one's own that is still there.
export function editLastMessage() {
  const room = state.room;
  if (!room) return false;
  for (let at = room.order.length - 1; at >= 0; at -= 1) {
    const message = room.messages.get(room.order[at]);
    if (message.senderId === state.me.customerId && !message.deleted && !isSystem(message)) {
      startEdit({ room: room, item: messageNode(message.messageId), message: message }, "composer");
      return true;
    }
  }
  return false;
}

// --- Deleting -------------------------------------------------------------------------

function confirmDelete(found) {
  pendingDelete = found.message.messageId;
  $("delete-preview").textContent = found.message.content;
  $("delete-dialog").returnValue = "";
  $("delete-dialog").showModal();
}

async function deleteClosed() {
  // The close event comes a task after the dialog closed: when the dialog was opened again
  // meanwhile (Escape, then Enter on the same Delete button), it belongs to the earlier opening.
  if ($("delete-dialog").open) return;
  const messageId = pendingDelete;
  pendingDelete = null;
  const room = state.room;
  const node = messageId && messageNode(messageId);
  if (!room || !node) return;
  if ($("delete-dialog").returnValue !== "delete") {
    (node.querySelector('[data-action="delete"]') || node).focus();
    return;
  }
  try {
    await api("DELETE", "/command/message/" + messageId);
    const tombstone = { content: "", deleted: true, editedAt: null, reactions: [] };
    updateMessage(room, Object.assign({}, room.messages.get(messageId), tombstone));
    $("composer-input").focus();
  } catch (error) {
    showStatus(error.message);
  }
}

// --- Reactions ------------------------------------------------------------------------

async function toggleReaction(found, emoji) {
  const me = state.me.customerId;
  const known = (found.message.reactions || []).find((r) => r.emoji === emoji);
  const given = !(known && known.customerIds.includes(me));
  const path = "/command/message/" + found.message.messageId + "/reactions/" + encodeURIComponent(emoji);
  try {
    await api(given ? "PUT" : "DELETE", path);
    // The push that follows carries everyone's reactions; until then, ours is shown at once.
    const now = found.room.messages.get(found.message.messageId);
    updateMessage(found.room, Object.assign({}, now, { reactions: withReaction(now.reactions || [], emoji, given) }));
  } catch (error) {
    showStatus(error.message);
  }
}

function withReaction(reactions, emoji, given) {
  const me = state.me.customerId;
  const changed = reactions.map((r) => ({
    emoji: r.emoji,
    customerIds: r.emoji === emoji ? r.customerIds.filter((id) => id !== me) : r.customerIds,
  }));
  if (given) {
    let entry = changed.find((r) => r.emoji === emoji);
    if (!entry) changed.push((entry = { emoji: emoji, customerIds: [] }));
    entry.customerIds.push(me);
  }
  return changed.filter((r) => r.customerIds.length);
}

function openPicker(button) {
  const bar = button.closest(".message").querySelector(".reactions");
  const open = bar.querySelector(".picker");
  closePickers();
  if (open) return button.focus();
  const picker = element("div", "picker");
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", "Pick a reaction");
  for (const emoji of COMMON_EMOJI) {
    const choice = element("button", "quiet", emoji);
    choice.type = "button";
    choice.dataset.action = "pick";
    choice.dataset.emoji = emoji;
    choice.dataset.key = "pick " + emoji;
    choice.setAttribute("aria-label", "React with " + emoji);
    picker.append(choice);
  }
  bar.append(picker);
  button.setAttribute("aria-expanded", "true");
  picker.firstChild.focus();
}

function closePickers(returnFocus) {
  for (const picker of $("message-list").querySelectorAll(".picker")) {
    const add = picker.closest(".message").querySelector(".add-reaction");
    picker.remove();
    add.setAttribute("aria-expanded", "false");
    if (returnFocus) add.focus();
  }
}

// Left and right arrows move along the picker, as in a toolbar.
function pickerKey(event) {
  const choices = Array.from(event.target.parentNode.children);
  const at = choices.indexOf(event.target);
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (step) {
    event.preventDefault();
    choices[(at + step + choices.length) % choices.length].focus();
  }
}

// --- Wiring ---------------------------------------------------------------------------

function clicked(event) {
  const button = event.target.closest("button[data-action]");
  const found = button && messageOf(button);
  if (!found) return;
  const action = button.dataset.action;
  if (action === "edit") startEdit(found, "message");
  else if (action === "cancel-edit") cancelEdit(button.closest(".editor"));
  else if (action === "delete") confirmDelete(found);
  else if (action === "toggle-reaction") toggleReaction(found, button.dataset.emoji);
  else if (action === "pick-reaction") openPicker(button);
  else if (action === "pick") {
    closePickers(true);
    toggleReaction(found, button.dataset.emoji);
  }
}

function keyPressed(event) {
  const editor = event.target.closest(".editor");
  if (editor && event.key === "Escape") {
    event.preventDefault();
    cancelEdit(editor);
  } else if (editor && event.target.tagName === "TEXTAREA" && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    editor.requestSubmit();
  } else if (event.target.closest(".picker")) {
    if (event.key === "Escape") {
      event.preventDefault();
      closePickers(true);
    } else pickerKey(event);
  }
}

export function bindMessageActions() {
  $("message-list").addEventListener("click", clicked);
  $("message-list").addEventListener("keydown", keyPressed);
  $("delete-dialog").addEventListener("close", deleteClosed);
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".picker, .add-reaction")) closePickers(false);
  });
}

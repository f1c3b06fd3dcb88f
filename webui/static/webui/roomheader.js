// The open room's header: its name, renamed in place (click it, Enter saves, Escape cancels),
// and its people: who is online, Add people (the search of "New room"), Remove for the room's
// creator, and Leave.
import { api } from "./api.js";
import { $, avatar, element, showStatus } from "./dom.js";
import { nameOf } from "./people.js";
import { PeopleSearch } from "./peoplesearch.js";
import { leavingRoom, renderRooms, roomRemoved, stayingInRoom } from "./rooms.js";
import { state } from "./state.js";

let addSearch = null;
let leaving = null;

// Drawn again whenever the room's view, names or presence change.
export function renderHeader(room) {
  if (state.room !== room) return;
  const view = state.rooms.get(room.id);
  $("room-name").textContent = view ? view.roomName : "Room " + room.id;
  $("room-name").hidden = !$("rename-form").hidden;
  $("members-button").hidden = false;
  $("members-button").textContent = "Members (" + room.participantIds.length + ")";
  renderOnline(room);
  renderMembers(room, view);
}

function renderOnline(room) {
  const total = room.participantIds.length || room.online.size;
  const online = room.participantIds.length
    ? room.participantIds.filter((id) => room.online.get(id)).length
    : Array.from(room.online.values()).filter(Boolean).length;
  $("room-online").textContent = room.online.size ? online + " of " + total + " online" : "";
}

// Before the room view has createdBy (an older server), everyone gets Remove and the server
// refuses those who are not the creator, with a message that says so.
function canRemove(view) {
  return !view || !("createdBy" in view) || view.createdBy === state.me.customerId;
}

function renderMembers(room, view) {
  const me = state.me.customerId;
  const ids = [me, ...room.participantIds.filter((id) => id !== me)].filter((id) => room.participantIds.includes(id));
  const items = ids.map((id) => {
    const item = element("li", "member");
    const name = nameOf(id, room.names);
    item.append(avatar(id === me ? state.me.fullName : name, null), element("span", "member-name", name));
    const online = id === me || room.online.get(id) === true;
    const presence = element("span", "presence muted" + (online ? " online" : ""), online ? "online" : "offline");
    item.append(presence);
    if (id !== me && canRemove(view)) {
      const remove = element("button", "quiet", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + (room.names.get(id) || name) + " from the room");
      remove.addEventListener("click", () => removeMember(room, id));
      item.append(remove);
    }
    return item;
  });
  $("member-list").replaceChildren(...items);
}

export function closeHeader() {
  togglePanel(false);
  closeRename(false);
  $("room-name").hidden = true;
  $("members-button").hidden = true;
  $("room-online").textContent = "";
}

// --- People -------------------------------------------------------------------------------

function togglePanel(open) {
  $("members-panel").hidden = !open;
  $("members-button").setAttribute("aria-expanded", String(open));
}

async function removeMember(room, customerId) {
  try {
    await api("DELETE", "/command/room/" + room.id + "/participants/" + customerId);
  } catch (error) {
    showStatus(error.message);
    return;
  }
  // The room's new view follows as a push; until then the list shows the change.
  room.participantIds = room.participantIds.filter((id) => id !== customerId);
  renderHeader(room);
  $("add-people-button").focus();
}

function openAddPeople() {
  addSearch.reset();
  $("add-people-dialog").showModal();
  $("add-people-search").focus();
}

async function addPeople(event) {
  event.preventDefault();
  const room = state.room;
  if (!room) return;
  if (!addSearch.chosen.size) {
    $("add-people-error").textContent = "Choose at least one person to add.";
    return;
  }
  try {
    const answer = await api("POST", "/command/room/" + room.id + "/participants", {
      customerIds: Array.from(addSearch.chosen.keys()),
    });
    $("add-people-dialog").close();
    // The room's new view follows as a push, and with it the new people's names and presence.
    if (!answer.data.length) showStatus("Everyone chosen was already in the room.");
  } catch (error) {
    $("add-people-error").textContent = error.message;
  }
}

function askToLeave() {
  if (!state.room) return;
  leaving = state.room.id;
  const view = state.rooms.get(leaving);
  $("leave-title").textContent = "Leave “" + (view ? view.roomName : "Room " + leaving) + "”?";
  $("leave-dialog").returnValue = "";
  $("leave-dialog").showModal();
}

async function leaveClosed() {
  if ($("leave-dialog").open) return; // the close of an earlier opening (see deleteClosed)
  const roomId = leaving;
  leaving = null;
  if ($("leave-dialog").returnValue !== "leave" || roomId === null) {
    if (state.room) $("leave-button").focus();
    return;
  }
  leavingRoom(roomId);
  try {
    await api("DELETE", "/command/room/" + roomId + "/participants/me");
  } catch (error) {
    stayingInRoom(roomId);
    showStatus(error.message);
    return;
  }
  roomRemoved({ roomId: roomId });
}

// --- Renaming -----------------------------------------------------------------------------

function startRename() {
  const room = state.room;
  if (!room) return;
  $("rename-input").value = $("room-name").textContent;
  $("rename-form").hidden = false;
  $("room-name").hidden = true;
  $("rename-input").focus();
  $("rename-input").select();
}

function closeRename(focus) {
  if ($("rename-form").hidden) return;
  $("rename-form").hidden = true;
  $("room-name").hidden = !state.room;
  if (focus && state.room) $("room-name").focus();
}

async function saveRename(event) {
  event.preventDefault();
  const room = state.room;
  const roomName = $("rename-input").value.trim();
  const view = room && state.rooms.get(room.id);
  if (!room || roomName === $("room-name").textContent) return closeRename(true);
  if (!roomName) {
    showStatus("A room needs a name.");
    return;
  }
  try {
    await api("PATCH", "/command/room/" + room.id, { roomName: roomName });
  } catch (error) {
    showStatus(error.message);
    return;
  }
  if (view) view.roomName = roomName;
  closeRename(state.room === room);
  renderHeader(room);
  renderRooms();
}

// --- Wiring -------------------------------------------------------------------------------

export function bindRoomHeader() {
  addSearch = new PeopleSearch({
    input: $("add-people-search"),
    results: $("add-people-results"),
    chosen: $("add-people-chosen"),
    error: $("add-people-error"),
    skip: (id) => Boolean(state.room && state.room.participantIds.includes(id)),
  });
  $("room-name").addEventListener("click", startRename);
  $("rename-form").addEventListener("submit", saveRename);
  $("rename-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      closeRename(true);
    }
  });
  // Leaving the box without Enter is cancelling, as Escape is.
  $("rename-input").addEventListener("blur", () =>
    setTimeout(() => document.activeElement !== $("rename-input") && closeRename(false)),
  );
  $("members-button").addEventListener("click", () => togglePanel($("members-panel").hidden));
  $("members-panel").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      togglePanel(false);
      $("members-button").focus();
    }
  });
  $("add-people-button").addEventListener("click", openAddPeople);
  $("add-people-form").addEventListener("submit", addPeople);
  $("leave-button").addEventListener("click", askToLeave);
  $("leave-dialog").addEventListener("close", leaveClosed);
}

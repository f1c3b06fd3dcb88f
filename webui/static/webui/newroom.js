// "New room": find people by phone number or name, choose some, and create a room with them.
import { api } from "./api.js";
import { openRoom } from "./conversation.js";
import { $ } from "./dom.js";
import { PeopleSearch } from "./peoplesearch.js";
import { loadRooms } from "./rooms.js";

let search = null;

function openNewRoom() {
  search.reset();
  $("new-room-name").value = "";
  $("new-room-dialog").showModal();
  $("people-search").focus();
}

// Until a name is typed, the room is named after the people chosen.
function nameAfterChosen() {
  const names = Array.from(search.chosen.values(), (p) => p.fullName);
  $("new-room-name").placeholder = names.length ? names.join(", ").slice(0, 100) : "Room name";
}

async function createRoom(event) {
  event.preventDefault();
  if (!search.chosen.size) {
    $("new-room-error").textContent = "Choose at least one person to talk to.";
    return;
  }
  const roomName = $("new-room-name").value.trim() || $("new-room-name").placeholder;
  try {
    const answer = await api("POST", "/command/room", {
      roomName: roomName,
      targetCustomerIds: Array.from(search.chosen.keys()),
    });
    $("new-room-dialog").close();
    await loadRooms();
    openRoom(answer.data);
  } catch (error) {
    $("new-room-error").textContent = error.message;
  }
}

export function bindNewRoom() {
  search = new PeopleSearch({
    input: $("people-search"),
    results: $("people-results"),
    chosen: $("people-chosen"),
    error: $("new-room-error"),
    changed: nameAfterChosen,
  });
  $("new-room-button").addEventListener("click", openNewRoom);
  $("new-room-form").addEventListener("submit", createRoom);
}

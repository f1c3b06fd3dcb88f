// "New room": find people by phone number or name, choose some, and create a room with them.
import { api } from "./api.js";
import { openRoom } from "./conversation.js";
import { $, avatar, element } from "./dom.js";
import { loadRooms } from "./rooms.js";
import { state } from "./state.js";

const chosen = new Map();
let searchTimer = null;
let searchSerial = 0;

function openNewRoom() {
  chosen.clear();
  $("people-search").value = "";
  $("new-room-name").value = "";
  $("new-room-error").textContent = "";
  $("people-results").replaceChildren();
  renderChosen();
  $("new-room-dialog").showModal();
  $("people-search").focus();
}

function searchPeople() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 250);
}

async function runSearch() {
  const text = $("people-search").value.trim();
  const serial = ++searchSerial;
  const results = $("people-results");
  if (text.length < 3) {
    results.replaceChildren();
    return;
  }
  // Phone numbers are stored as digits (and a leading +), so separators are dropped.
  const byPhone = /^\+?[\d\s\-().]+$/.test(text);
  const query = byPhone ? text.replace(/[\s\-().]/g, "") : text;
  const path = (byPhone ? "/customer/info/phoneNumber/" : "/customer/info/fullName/") + encodeURIComponent(query);
  try {
    const answer = await api("GET", path);
    if (serial !== searchSerial) return;
    const people = answer.data.filter((p) => p.customerId !== state.me.customerId);
    $("new-room-error").textContent = people.length ? "" : "Nobody found for “" + text + "”.";
    results.replaceChildren(...people.map(resultItem));
  } catch (error) {
    if (serial === searchSerial) $("new-room-error").textContent = error.message;
  }
}

function resultItem(found) {
  const button = element("button", "person");
  button.type = "button";
  const label = found.fullName + (found.phoneNumber ? " · " + found.phoneNumber : "");
  button.append(avatar(found.fullName, found.avatarColor), element("span", "", label));
  button.setAttribute("aria-label", "Add " + label);
  button.addEventListener("click", () => {
    chosen.set(found.customerId, found);
    renderChosen();
    $("people-search").focus();
  });
  const item = element("li");
  item.append(button);
  return item;
}

function renderChosen() {
  const items = Array.from(chosen.values(), (found) => {
    const item = element("li", "chip");
    const remove = element("button", "quiet", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + found.fullName);
    remove.addEventListener("click", () => {
      chosen.delete(found.customerId);
      renderChosen();
    });
    item.append(element("span", "", found.fullName), remove);
    return item;
  });
  $("people-chosen").replaceChildren(...items);
  const names = Array.from(chosen.values(), (p) => p.fullName);
  $("new-room-name").placeholder = names.length ? names.join(", ").slice(0, 100) : "Room name";
}

async function createRoom(event) {
  event.preventDefault();
  if (!chosen.size) {
    $("new-room-error").textContent = "Choose at least one person to talk to.";
    return;
  }
  const roomName = $("new-room-name").value.trim() || $("new-room-name").placeholder;
  try {
    const answer = await api("POST", "/command/room", {
      roomName: roomName,
      targetCustomerIds: Array.from(chosen.keys()),
    });
    $("new-room-dialog").close();
    await loadRooms();
    openRoom(answer.data);
  } catch (error) {
    $("new-room-error").textContent = error.message;
  }
}

export function bindNewRoom() {
  $("new-room-button").addEventListener("click", openNewRoom);
  $("people-search").addEventListener("input", searchPeople);
  $("people-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(searchTimer);
      runSearch();
    }
  });
  $("new-room-form").addEventListener("submit", createRoom);
}

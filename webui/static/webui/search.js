// Search over every room of one's own: the box above the room list, whose results replace the
// list while there is a query; a result opens its room at that message.
import { api } from "./api.js";
import { openRoom } from "./conversation.js";
import { $, element, timeOf } from "./dom.js";
import { showMessage } from "./messages.js";
import { state } from "./state.js";

const QUERY_MIN = 2;
const PAGE_SIZE = 20;

let searchTimer = null;
let searchSerial = 0;
let shownQuery = "";

function typed() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 300);
}

function showSearching(on) {
  $("sidebar").classList.toggle("searching", on);
  $("search-view").hidden = !on;
}

async function runSearch(before) {
  clearTimeout(searchTimer);
  const query = $("search-input").value.trim();
  const serial = ++searchSerial;
  if (!query) return closeSearch();
  showSearching(true);
  if (query.length < QUERY_MIN) {
    $("search-state").textContent = "Type at least " + QUERY_MIN + " characters.";
    $("search-results").replaceChildren();
    $("search-more").hidden = true;
    return;
  }
  const params = new URLSearchParams({ q: query });
  if (before) params.set("before", String(before));
  try {
    const answer = await api("GET", "/query/search?" + params);
    if (serial !== searchSerial) return;
    const items = answer.data.map(resultItem);
    if (before && query === shownQuery) $("search-results").append(...items);
    else $("search-results").replaceChildren(...items);
    shownQuery = query;
    const count = $("search-results").children.length;
    $("search-state").textContent = count ? "" : "No messages found for “" + query + "”.";
    $("search-more").hidden = answer.data.length < PAGE_SIZE;
  } catch (error) {
    if (serial === searchSerial) $("search-state").textContent = error.message;
  }
}

function resultItem(found) {
  const button = element("button", "search-result");
  button.type = "button";
  button.dataset.messageId = String(found.messageId);
  const top = element("span", "room-top");
  top.append(element("span", "room-name", found.roomName));
  const time = element("time", "muted", timeOf(found.sentAt));
  time.dateTime = found.sentAt;
  top.append(time);
  const sender = found.senderId === state.me.customerId ? "You" : found.senderFullName;
  button.append(top, element("span", "result-text", sender + ": " + found.content));
  button.addEventListener("click", () => openAt(found.roomId, found.messageId));
  const item = element("li");
  item.append(button);
  return item;
}

async function openAt(roomId, messageId) {
  await openRoom(roomId);
  if (state.room && state.room.id === roomId) await showMessage(state.room, messageId);
}

function moreResults() {
  const results = $("search-results").children;
  const last = results[results.length - 1];
  if (last) runSearch(Number(last.firstChild.dataset.messageId));
}

function closeSearch() {
  clearTimeout(searchTimer);
  searchSerial += 1;
  shownQuery = "";
  $("search-results").replaceChildren();
  $("search-state").textContent = "";
  showSearching(false);
}

export function resetSearch() {
  $("search-input").value = "";
  closeSearch();
}

export function bindSearch() {
  $("search-input").addEventListener("input", typed);
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch();
  });
  $("search-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      resetSearch();
    }
  });
  $("search-more").addEventListener("click", moreResults);
}

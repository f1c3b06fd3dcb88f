// Finding people by phone number (digits) or name (at least 3 characters) and choosing some:
// the search of "New room" and of "Add people", each over its own input, result list, chosen
// list and error line.
import { api } from "./api.js";
import { avatar, element } from "./dom.js";
import { state } from "./state.js";

export class PeopleSearch {
  // skip(customerId): people not to offer (besides oneself); changed(): the choice changed.
  constructor({ input, results, chosen, error, skip, changed }) {
    Object.assign(this, { input, results, chosenList: chosen, error });
    this.skip = skip || (() => false);
    this.changed = changed || (() => {});
    this.chosen = new Map();
    this.timer = null;
    this.serial = 0;
    input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), 250);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(this.timer);
        this.run();
      }
    });
  }

  reset() {
    clearTimeout(this.timer);
    this.serial += 1;
    this.chosen.clear();
    this.input.value = "";
    this.error.textContent = "";
    this.results.replaceChildren();
    this.renderChosen();
  }

  async run() {
    const text = this.input.value.trim();
    const serial = ++this.serial;
    if (text.length < 3) {
      this.results.replaceChildren();
      return;
    }
    // Phone numbers are stored as digits (and a leading +), so separators are dropped.
    const byPhone = /^\+?[\d\s\-().]+$/.test(text);
    const query = byPhone ? text.replace(/[\s\-().]/g, "") : text;
    const path = (byPhone ? "/customer/info/phoneNumber/" : "/customer/info/fullName/") + encodeURIComponent(query);
    try {
      const answer = await api("GET", path);
      if (serial !== this.serial) return;
      const found = answer.data.filter((p) => p.customerId !== state.me.customerId);
      const offered = found.filter((p) => !this.skip(p.customerId));
      this.error.textContent = offered.length
        ? ""
        : found.length
          ? "Everyone found for “" + text + "” is already in the room."
          : "Nobody found for “" + text + "”.";
      this.results.replaceChildren(...offered.map((p) => this.resultItem(p)));
    } catch (error) {
      if (serial === this.serial) this.error.textContent = error.message;
    }
  }

  resultItem(found) {
    const button = element("button", "person");
    button.type = "button";
    const label = found.fullName + (found.phoneNumber ? " · " + found.phoneNumber : "");
    button.append(avatar(found.fullName, found.avatarColor), element("span", "", label));
    button.setAttribute("aria-label", "Add " + label);
    button.addEventListener("click", () => {
      this.chosen.set(found.customerId, found);
      this.renderChosen();
      this.input.focus();
    });
    const item = element("li");
    item.append(button);
    return item;
  }

  renderChosen() {
    const items = Array.from(this.chosen.values(), (found) => {
      const item = element("li", "chip");
      const remove = element("button", "quiet", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + found.fullName);
      remove.addEventListener("click", () => {
        this.chosen.delete(found.customerId);
        this.renderChosen();
        this.input.focus();
      });
      item.append(element("span", "", found.fullName), remove);
      return item;
    });
    this.chosenList.replaceChildren(...items);
    this.changed();
  }
}

// The HTTP API over fetch, authenticated by the same-origin HttpOnly cookie. Every failure
// becomes an ApiError whose message a person can read.
import { state } from "./state.js";

// Set by the session module, which imports this one; importing endSession back would make an
// import cycle.
let sessionLost = () => {};

export function onSessionLost(handler) {
  sessionLost = handler;
}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function errorText(payload, status) {
  if (payload && typeof payload === "object") {
    if (payload.detail) return String(payload.detail);
    if (payload.success === false && payload.message) return String(payload.message);
    if (payload.details) return String(payload.details);
    if (payload.message) return String(payload.message);
  }
  return "The server answered with status " + status + ".";
}

export async function api(method, path, body) {
  const options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError("The server cannot be reached. Check the connection and try again.", 0);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (error) {
    payload = null;
  }
  if (!response.ok || (payload && payload.success === false)) {
    if (response.status === 401 && state.me && !path.startsWith("/auth/")) {
      sessionLost("Your session has ended. Please log in again.");
    }
    throw new ApiError(errorText(payload, response.status), response.status);
  }
  return payload;
}

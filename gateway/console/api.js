// The console's only way to reach MAE: the public REST API under /api/v1.
// The token lives in localStorage (the console is a same-origin SPA with a strict
// CSP and no third-party code); it is sent as a Bearer header, never in a URL.

const TOKEN_KEY = "mae.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function getToken() { return localStorage.getItem(TOKEN_KEY); }
export function setToken(token) { localStorage.setItem(TOKEN_KEY, token); }
export function clearToken() { localStorage.removeItem(TOKEN_KEY); }

// A login started here carries a random state that only this tab knows (sessionStorage);
// the token that comes back is taken only with that state: a link that hands the console
// someone else's token (login CSRF) is refused.
const LOGIN_STATE_KEY = "mae.login_state";
export function newLoginState() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const state = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  sessionStorage.setItem(LOGIN_STATE_KEY, state);
  return state;
}
export function takeLoginState() {
  const state = sessionStorage.getItem(LOGIN_STATE_KEY);
  sessionStorage.removeItem(LOGIN_STATE_KEY);
  return state;
}

// Called with the ApiError when the API says the token is no good, so the app can
// send the person back to the login page instead of showing a broken page.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// A key for a request that creates a deploy record (Idempotency-Key): the same key on a
// retry gets the first record back instead of a second deploy. getRandomValues, not
// randomUUID, which browsers offer only on HTTPS pages.
export function newRequestKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function api(method, path, body, { query, headers: extra } = {}) {
  let url = "/api/v1" + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers = { Accept: "application/json", ...(extra || {}) };
  const token = getToken();
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "network", null, { cause: String(err) });
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(response.status, e.code || "http_" + response.status, e.message || null, e.details);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return data;
}

// Every page of a list endpoint, up to `max` items (the console shows small lists).
export async function listAll(path, query = {}, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", path, undefined, { query: { ...query, limit: 200, cursor } });
    items.push(...(page.items || []));
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// The one way the pages reach Microfleet: its JSON API, with the session cookie and its CSRF token.
// A 401 anywhere means the session has ended: the app returns to the login page, then to this page.

let csrfToken = null;
let onSessionEnded = () => {};

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

export function useSession(session) {
  csrfToken = session ? session.csrf_token : null;
}

export function whenSessionEnds(callback) {
  onSessionEnded = callback;
}

const SAFE = new Set(["GET", "HEAD"]);

export async function api(method, path, body, { loginForm = false, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, "network", "Microfleet cannot be reached; check the connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.message) || `the server answered ${response.status}`;
    const retry = Number(response.headers.get("Retry-After")) || undefined;
    const error = new ApiError(response.status, data && data.code, message, retry);
    if (response.status === 401 && !loginForm) onSessionEnded(error);
    throw error;
  }
  return data;
}

export const get = (path) => api("GET", path);
export const vehiclePath = (id) => `/api/v1/vehicles/${encodeURIComponent(id)}`;

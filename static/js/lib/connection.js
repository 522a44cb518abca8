// One websocket to the server that never gives up: reconnects with exponential backoff and
// full jitter (so a restarted server is not hit by every TV at the same instant), and treats a
// silent link (no message for 2.5 heartbeats) as dead. Exactly one socket, one watchdog and at
// most one reconnect timer exist at any time, so a board can run for weeks.

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
// Close codes after which retrying cannot help (docs/websocket.md).
const FINAL_CODES = new Set([4400, 4401, 4403]);
// The server changed what this page may show or do: load the page again with the new rights.
const RELOAD_CODE = 4001;

export class LiveConnection {
  /**
   * @param {object} options
   * @param {string} options.path  "/ws/board/?queues=100" or "/ws/kiosk/<token>/"
   * @param {number} options.heartbeat  seconds between server heartbeats
   * @param {(msg: object) => void} options.onMessage
   * @param {(status: string, detail?: object) => void} options.onStatus
   *   "connecting" | "open" | "reconnecting" | "closed" (final, detail.code)
   */
  constructor({ path, heartbeat, onMessage, onStatus }) {
    this.path = path;
    this.heartbeatMs = heartbeat * 1000;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.socket = null;
    this.attempt = 0;
    this.lastHeard = 0;
    this.reconnectTimer = null;
    this.watchdog = null;
    this.stopped = false;
  }

  start() {
    this.watchdog = setInterval(() => this.#checkAlive(), 1000);
    this.#connect();
  }

  /** Send a JSON message; false when the link is down (the caller tells the user). */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  #url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.path}`;
  }

  #connect() {
    this.reconnectTimer = null;
    this.onStatus(this.attempt ? "reconnecting" : "connecting");
    const socket = new WebSocket(this.#url());
    this.socket = socket;
    this.lastHeard = Date.now();
    socket.onopen = () => {
      this.lastHeard = Date.now();
    };
    socket.onmessage = (event) => {
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret; the next valid message carries on
      }
      if (message.type === "hello") {
        this.attempt = 0;
        if (Number.isFinite(message.heartbeat)) this.heartbeatMs = message.heartbeat * 1000;
        this.onStatus("open");
      }
      this.onMessage(message);
    };
    socket.onclose = (event) => this.#closed(socket, event.code);
    socket.onerror = () => {}; // a close event always follows
  }

  #closed(socket, code) {
    if (socket !== this.socket) return; // an abandoned socket finishing its close
    this.#drop(socket);
    if (code === RELOAD_CODE) {
      this.stopped = true;
      window.location.reload();
      return;
    }
    if (FINAL_CODES.has(code)) {
      this.stopped = true;
      clearInterval(this.watchdog);
      this.onStatus("closed", { code });
      return;
    }
    this.#schedule();
  }

  #drop(socket) {
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      socket.close();
    }
    this.socket = null;
  }

  #schedule() {
    if (this.stopped || this.reconnectTimer) return;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.onStatus("reconnecting", { delay });
    this.reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #checkAlive() {
    if (!this.socket || this.stopped) return;
    // A half-open TCP link never fires "close": silence is the only sign.
    if (Date.now() - this.lastHeard > 2.5 * this.heartbeatMs) {
      const socket = this.socket;
      this.#drop(socket);
      this.#schedule();
    }
  }
}

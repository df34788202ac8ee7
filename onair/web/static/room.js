// A room's live events over its WebSocket. A dropped socket reconnects by itself and asks for
// what it missed with `since=`, so a page never skips an event (or sees one twice).

const RETRY_MS = [500, 1000, 2000, 4000, 8000];

/**
 * Opens the room of `showId`. `onEvent(event, { state })` gets every event once, in order;
 * `state` is true for the sticky state (what is playing...) replayed from a `room.welcome`.
 * `onStatus("connecting" | "open" | "waiting" | "gone" | "removed")` follows the connection.
 * `onWelcome(welcome)` gets every `room.welcome` (each connect): the chat's last messages and
 * settings, and who the server thinks this user is. Replies meant for this client alone (an
 * acknowledgement, an error) carry no sequence number and go to `onEvent` as they come.
 * Returns `{ send(action), close() }`: `send` returns false when the socket is not open.
 */
export function joinRoom(showId, { onEvent, onWelcome = () => {}, onStatus = () => {} }) {
  let socket = null;
  let seq = null;
  let attempt = 0;
  let timer = null;
  let closed = false;
  let welcome = null;

  function url() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const since = seq === null ? "" : `?since=${seq}`;
    return `${scheme}://${window.location.host}/api/v1/rooms/${showId}/ws${since}`;
  }

  function replay(hello) {
    for (const event of hello.state ?? []) onEvent(event, { state: true });
  }

  function receive(events) {
    for (const event of events) {
      if (event.seq === undefined) {
        onEvent(event, { state: false });
        continue;
      }
      if (event.type === "room.welcome") {
        // On a first connect the state is all there is; on a reconnect the missed events
        // follow in the next frame, so the position is left where it was.
        if (seq === null) {
          seq = event.seq;
          replay(event);
        }
        welcome = event;
        onWelcome(event);
        continue;
      }
      if (event.type === "room.reset") {
        // Too much was missed to replay: start again from the room's current state.
        seq = event.seq;
        if (welcome) replay(welcome);
        continue;
      }
      if (seq !== null && event.seq <= seq) continue;
      seq = event.seq;
      onEvent(event, { state: false });
    }
  }

  function connect() {
    timer = null;
    onStatus("connecting");
    socket = new WebSocket(url());
    socket.addEventListener("open", () => {
      attempt = 0;
      onStatus("open");
    });
    socket.addEventListener("message", (message) => {
      let events;
      try {
        events = JSON.parse(message.data);
      } catch {
        return;
      }
      if (Array.isArray(events)) receive(events);
    });
    socket.addEventListener("close", (event) => {
      if (closed) return;
      if (event.code === 4404) {
        onStatus("gone");
        return;
      }
      if (event.code === 4403) {
        // Removed, banned or suspended: coming back would only be refused again.
        onStatus("removed", event.reason);
        return;
      }
      onStatus("waiting");
      // A client dropped for being slow (4408) comes straight back; others back off a little.
      const wait = event.code === 4408 ? 0 : RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt += 1;
      timer = setTimeout(connect, wait * (0.75 + Math.random() / 2));
    });
  }

  connect();
  return {
    send(action) {
      if (socket?.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(action));
      return true;
    },
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.close(1000);
    },
  };
}

// A room's live events over its WebSocket. A dropped socket reconnects by itself and asks for
// what it missed with `since=`, so a page never skips an event (or sees one twice).

const RETRY_MS = [500, 1000, 2000, 4000, 8000];

/**
 * Opens the room of `showId`. `onEvent(event, { state })` gets every event once, in order;
 * `state` is true for the sticky state (what is playing...) replayed from a `room.welcome`.
 * `onStatus("connecting" | "open" | "waiting" | "gone")` follows the connection.
 * Returns an object whose `close()` stops it for good.
 */
export function joinRoom(showId, { onEvent, onStatus = () => {} }) {
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
      if (event.type === "room.welcome") {
        // On a first connect the state is all there is; on a reconnect the missed events
        // follow in the next frame, so the position is left where it was.
        if (seq === null) {
          seq = event.seq;
          replay(event);
        }
        welcome = event;
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
      onStatus("waiting");
      // A client dropped for being slow (4408) comes straight back; others back off a little.
      const wait = event.code === 4408 ? 0 : RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt += 1;
      timer = setTimeout(connect, wait * (0.75 + Math.random() / 2));
    });
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.close(1000);
    },
  };
}

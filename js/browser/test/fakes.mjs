// Fakes of the platform's Web Locks and BroadcastChannel, with the
// semantics the session relies on: one holder of a lock name at a time,
// granted in request order; a message reaches every other channel of the
// same name, asynchronously, as a structured clone.

export class FakeLocks {
  constructor() { this.tails = new Map(); }
  request(name, callback) {
    const prev = this.tails.get(name) ?? Promise.resolve();
    const run = prev.then(() => callback());
    this.tails.set(name, run.then(() => {}, () => {}));
    return run;
  }
}

export class Hub {
  constructor() { this.channels = new Set(); this.sent = []; }
  channel() {
    const hub = this;
    const ch = {
      onmessage: null,
      postMessage(m) {
        hub.sent.push(m);
        const data = structuredClone(m);
        for (const other of hub.channels) {
          if (other !== ch) setTimeout(() => other.onmessage?.({ data }), 0);
        }
      },
      close() { hub.channels.delete(ch); },
    };
    this.channels.add(ch);
    return ch;
  }
}

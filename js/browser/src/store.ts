/**
 * Store keeps what outlives a tab: the DPoP key pair and the DPoP-bound
 * refresh token. Access and ID tokens are never stored; they live in each
 * tab's memory.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
}

/**
 * IndexedDBStore is a Store in one IndexedDB object store (database
 * "keycard", store "state"). CryptoKeys go in as they are: a
 * non-extractable key stays non-extractable.
 */
export class IndexedDBStore implements Store {
  private db: Promise<IDBDatabase>;

  constructor(name = "keycard") {
    this.db = new Promise((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("state");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  private async run<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest): Promise<T> {
    const db = await this.db;
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction("state", mode);
      const req = f(tx.objectStore("state"));
      tx.oncomplete = () => resolve(req.result as T);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  get<T>(key: string): Promise<T | undefined> {
    return this.run<T | undefined>("readonly", (s) => s.get(key));
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.run("readwrite", (s) => s.put(value, key));
  }

  async delete(key: string): Promise<void> {
    await this.run("readwrite", (s) => s.delete(key));
  }
}

/** MemoryStore is a Store in memory, for tests and for pages that want nothing to outlive them. */
export class MemoryStore implements Store {
  private m = new Map<string, unknown>();
  async get<T>(key: string): Promise<T | undefined> {
    return this.m.get(key) as T | undefined;
  }
  async put(key: string, value: unknown): Promise<void> {
    this.m.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.m.delete(key);
  }
}

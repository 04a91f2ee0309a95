/**
 * The viewers of one takeover. The first viewer controls (keyboard, pointer, clipboard); later
 * ones only watch. Control is never handed to a viewer that is already watching: a stranger who
 * opened the link second must not inherit the keyboard because the user's socket dropped. The
 * next viewer to connect while nobody controls gets it, and the user's own page reconnecting
 * with its key takes it back at once.
 */
import { CLOSE_CODES, type Viewer, type ViewerLease } from './types.ts';

interface Entry {
  viewer: Viewer;
}

export class ViewerSet {
  private readonly entries = new Set<Entry>();
  private controller: Entry | undefined;

  get size(): number {
    return this.entries.size;
  }

  add(viewer: Viewer): ViewerLease {
    const entry: Entry = { viewer };
    const current = this.controller;
    const replaced = current !== undefined && viewer.key !== undefined && current.viewer.key === viewer.key;
    // Taken before the close, in the same turn: the old connection can neither write it nor hold more.
    const carried = replaced ? (current.viewer.surrender?.() ?? []) : [];
    if (replaced) {
      this.controller = entry;
      this.entries.delete(current);
      current.viewer.close(CLOSE_CODES.replaced, 'replaced by a newer connection');
    } else if (!current) {
      this.controller = entry;
    }
    this.entries.add(entry);
    const set = this;
    return {
      get controls(): boolean {
        return set.controller === entry;
      },
      replaced,
      carried,
      detach(): void {
        set.remove(entry);
      },
    };
  }

  /** Whether the viewer with this key (its page's random per-tab key) holds the keyboard and mouse now. */
  controlsKey(key: string | undefined): boolean {
    return key !== undefined && this.controller?.viewer.key === key;
  }

  /** Closes every viewer; the set stays usable but empty. */
  closeAll(code: number, reason: string): void {
    const all = [...this.entries];
    this.entries.clear();
    this.controller = undefined;
    for (const entry of all) entry.viewer.close(code, reason);
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry);
    if (this.controller === entry) this.controller = undefined;
  }
}

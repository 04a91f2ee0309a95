/** What the server embeds in the page for its script: safe to show, no token, no socket path. */
export interface PageData {
  id: string;
  reason: string;
  label?: string;
  /** ISO 8601. */
  expiresAt: string;
}

export const PAGE_DATA_ELEMENT_ID = 'takeover-data';

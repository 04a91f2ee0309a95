import type { Plugin } from 'esbuild';

/** The takeover page's noVNC trimmed for the bridge in front of Xtigervnc (novnc-trim.mjs). */
export declare const novncTrim: Plugin;

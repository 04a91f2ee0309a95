/**
 * Masks every learned credential value, and its common encodings, in text: the agent's output,
 * runner logs, events and error messages. Values shorter than `minLength` are never learned, so
 * masking never blanks common words; validation refuses such secrets before they get here.
 */
import type { Transform } from 'node:stream';
import { MIN_SECRET_LENGTH } from './credentials-schema.ts';
import { binaryFormsOf, formsOf } from './mask-forms.ts';
import { createMaskingStream, type MaskingStreamOptions } from './masking-stream.ts';
import { PatternSet } from './pattern-set.ts';
import { revealOf, type Secret } from './secret.ts';
import { secretValuesIn } from './secret-values.ts';

/**
 * Files up to this size are learned whole (key files, certificates and configs are far smaller);
 * of a larger text file only its secret-looking values are learned, and a larger binary file is not
 * learned: its base64 in pieces would cost the masker megabytes per sandbox.
 */
export const MAX_LEARNED_FILE_BYTES = 64 * 1024;
export const MASK = '***';

export interface MaskerOptions {
  /** Shortest value or derived form learned. Default 8. */
  minLength?: number;
  /** What a masked value becomes. Default `***`. */
  replacement?: string;
}

export class Masker {
  readonly minLength: number;
  readonly replacement: string;
  private readonly patterns = new Set<string>();
  private text: PatternSet | undefined;
  private bytes: PatternSet | undefined;

  constructor(options: MaskerOptions = {}) {
    this.minLength = options.minLength ?? MIN_SECRET_LENGTH;
    this.replacement = options.replacement ?? MASK;
  }

  /** Learns a value and its encodings. Returns false when the value is too short to learn. */
  learn(value: string | Secret): boolean {
    const raw = revealOf(value);
    if (raw.length < this.minLength) return false;
    this.add(formsOf(raw, this.minLength));
    return true;
  }

  /**
   * Learns a file's content: as text when it is UTF-8, else its base64 forms. The secret-looking
   * values of a text file (JSON members, `key: value` lines, private key blocks) are learned on
   * their own too, since an agent that parses the file prints them without their key or quotes.
   * Returns false when nothing could be learned.
   */
  learnFile(content: Buffer): boolean {
    const text = content.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(content)) {
      if (content.length > MAX_LEARNED_FILE_BYTES) return false;
      this.add(binaryFormsOf(content, this.minLength));
      return true;
    }
    let learned = false;
    for (const value of secretValuesIn(text)) learned = this.learn(value) || learned;
    if (content.length <= MAX_LEARNED_FILE_BYTES) learned = this.learn(text) || learned;
    return learned;
  }

  get patternCount(): number {
    return this.patterns.size;
  }

  mask(text: string): string {
    return this.textSet().replace(text, this.replacement);
  }

  maskBuffer(data: Buffer): Buffer {
    return Buffer.from(this.byteSet().replace(data.toString('latin1'), this.replacement), 'latin1');
  }

  /** A Transform that masks a byte stream, including values split across chunks. */
  createMaskingStream(options: MaskingStreamOptions = {}): Transform {
    return createMaskingStream(() => this.byteSet(), this.replacement, options);
  }

  private add(forms: string[]): void {
    const before = this.patterns.size;
    for (const form of forms) this.patterns.add(form);
    if (this.patterns.size !== before) {
      this.text = undefined;
      this.bytes = undefined;
    }
  }

  private textSet(): PatternSet {
    this.text ??= new PatternSet(this.patterns);
    return this.text;
  }

  /** Byte streams are matched as latin1 strings (one char per byte), so output stays byte-exact. */
  private byteSet(): PatternSet {
    this.bytes ??= new PatternSet([...this.patterns].map((p) => Buffer.from(p, 'utf8').toString('latin1')));
    return this.bytes;
  }
}

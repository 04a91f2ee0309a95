/**
 * The on-screen keyboard on a phone: the desktop's canvas cannot raise it, so a "Keyboard" button
 * focuses an invisible text field and what is typed there goes to the sandbox as key presses
 * (X keysyms: Latin-1 as is, any other character as 0x01000000 + its code point).
 */
import type RFB from '@novnc/novnc';

const SPECIAL: Record<string, number> = { Backspace: 0xff08, Enter: 0xff0d, Tab: 0xff09 };

function keysymOf(char: string): number {
  const code = char.codePointAt(0)!;
  return code < 0x100 ? code : 0x01000000 + code;
}

export function startKeyboardButton(
  button: HTMLButtonElement,
  field: HTMLInputElement,
  rfb: () => RFB | undefined,
): void {
  // Shown only where touch is the main input.
  button.hidden = !matchMedia('(pointer: coarse)').matches;
  button.addEventListener('click', () => field.focus());
  field.addEventListener('keydown', (event) => {
    const keysym = SPECIAL[event.key];
    if (keysym === undefined) return;
    event.preventDefault();
    rfb()?.sendKey(keysym, event.code || null);
  });
  field.addEventListener('input', () => {
    for (const char of field.value) rfb()?.sendKey(keysymOf(char), null);
    field.value = '';
  });
}

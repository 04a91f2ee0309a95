/**
 * A scripted user for the demo agent's takeover (`npm run demo -- --auto`, and the end-to-end
 * test): opens the takeover link in the host's Chromium, waits for the sandbox's desktop to be
 * drawn, clicks into the login form's fields through the noVNC canvas, types, submits, and
 * presses Done. Only the stream is used: it sees pixels, as a person would.
 */
import { chromium, type Page } from 'playwright-core';
import { quietChromiumFlags } from '../sandbox-agent/chromium-quiet.ts';

/** Chromium flags for a closed network: no traffic of its own (chromium-quiet.ts), no sandbox as root. */
export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', ...quietChromiumFlags()];

export interface ScriptedUserOptions {
  username?: string;
  password?: string;
  /** Press Cancel instead of logging in. */
  cancel?: boolean;
  /**
   * Whether the site has answered the login, when the caller can tell (its own server): a changed
   * screen alone may be the form's own repaint, and Done before the answer leaves no session.
   */
  answered?: () => boolean;
  log?: (line: string) => void;
}

/**
 * Where the demo login page's fields are, as fractions of the desktop (they are huge on purpose,
 * sized in vh): the page's window sizes the desktop, so its pixels depend on the user's window.
 */
const FIELDS = { username: { x: 0.5, y: 0.375 }, password: { x: 0.5, y: 0.71 } };

/** A cheap fingerprint of what the canvas shows, to see when the desktop changed. */
async function canvasFingerprint(page: Page): Promise<string> {
  return page.evaluate(() => {
    const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
    if (!canvas || canvas.width === 0) return '';
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
    if (!data) return '';
    let hash = 0;
    for (let i = 0; i < data.length; i += 97) hash = (hash * 31 + data[i]!) | 0;
    return `${canvas.width}x${canvas.height}:${hash}`;
  });
}

/**
 * Whether the login form has left the screen: down the desktop's middle column, below the heading,
 * the form has its fields' and button's dark borders (#334) and the pages after it have none. A
 * changed screen alone is not enough: the caret's blink or the form's own repaint change it too,
 * and Done before the site's answer leaves no session.
 */
async function loginFormGone(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
    if (!canvas || canvas.width === 0) return false;
    const top = Math.floor(canvas.height * 0.2);
    const column = canvas
      .getContext('2d')
      ?.getImageData(Math.floor(canvas.width / 2), top, 1, canvas.height - top).data;
    if (!column) return false;
    for (let i = 0; i < column.length; i += 4) {
      if (column[i]! + column[i + 1]! + column[i + 2]! < 300) return false;
    }
    return true;
  });
}

/** Clicks at `at`, fractions of the desktop's width and height. */
async function clickDesktop(page: Page, at: { x: number; y: number }): Promise<void> {
  const canvas = page.locator('#screen canvas');
  const box = await canvas.boundingBox();
  const size = await canvas.evaluate((c: HTMLCanvasElement) => ({ width: c.width, height: c.height }));
  if (!box || size.width === 0) throw new Error('the desktop canvas is not there');
  await page.mouse.click(box.x + at.x * box.width, box.y + at.y * box.height);
}

/** Waits, bounded, until `check` holds; a scripted user never waits forever. */
async function until(check: () => Promise<boolean>, what: string, attempts = 150): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the scripted user gave up waiting for ${what}`);
}

export async function completeTakeover(url: string, options: ScriptedUserOptions = {}): Promise<void> {
  const log = options.log ?? (() => {});
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(url);
    await page.locator('#status[data-kind="ok"]').waitFor({ timeout: 30_000 });
    await until(async () => (await canvasFingerprint(page)) !== '', 'the first frame');
    log('the desktop is on screen');
    if (options.cancel) {
      await page.click('#cancel');
      return;
    }
    // The form drawn, not only a first frame: the check after Enter means something only then.
    await until(async () => !(await loginFormGone(page)), 'the login form');
    await clickDesktop(page, FIELDS.username);
    await page.keyboard.type(options.username ?? 'ada', { delay: 20 });
    await clickDesktop(page, FIELDS.password);
    await page.keyboard.type(options.password ?? 'grexal-demo', { delay: 20 });
    await page.keyboard.press('Enter');
    // The welcome page replaces the form: the login went through before Done is pressed.
    // Bounded at a minute: the typed keys reach the sandbox only once the agent is frozen, and a
    // fresh CI run under gVisor once gave up at 15 s with the form still empty on screen.
    await until(() => loginFormGone(page), 'the page after the login', 600);
    const answered = options.answered;
    if (answered) await until(async () => answered(), "the site's answer to the login");
    log('logged in through the stream; pressing Done');
    await page.click('#done');
    await page.locator('#status[data-kind="final"]').waitFor({ timeout: 10_000 });
  } catch (error) {
    // What the user saw when it went wrong, for whoever reads the failure.
    const shot = '/tmp/grexal-scripted-user.png';
    await browser
      .contexts()[0]
      ?.pages()[0]
      ?.screenshot({ path: shot })
      .catch(() => {});
    throw new Error(`${(error as Error).message} (screenshot: ${shot})`);
  } finally {
    await browser.close();
  }
}

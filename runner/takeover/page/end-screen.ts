/** The screen the page shows once a takeover is over: one per way it can end. */

export type EndKind =
  | 'completed'
  | 'condition'
  | 'cancelled'
  | 'expired'
  | 'sandbox-gone'
  | 'ended'
  | 'elsewhere'
  | 'invalid';

const ENDS: Record<EndKind, { title: string; text: string }> = {
  completed: { title: 'Done', text: 'The agent carries on from here. You can close this tab.' },
  condition: {
    title: 'Signed in — handing back',
    text: 'The sign-in went through, so the agent took over again by itself. You can close this tab.',
  },
  cancelled: { title: 'Cancelled', text: 'The agent was told you cancelled. You can close this tab.' },
  expired: {
    title: 'Time is up',
    text: 'The takeover expired before anyone pressed Done. The agent may ask again with a new link.',
  },
  'sandbox-gone': {
    title: 'The sandbox is gone',
    text: 'The agent’s sandbox stopped, so there is nothing left to log in to. You can close this tab.',
  },
  ended: { title: 'This takeover has ended', text: 'Ask the agent for a new link if you still need one.' },
  elsewhere: {
    title: 'Open in another tab',
    text: 'You opened this desktop in another tab; carry on there.',
  },
  invalid: { title: 'This link does not work', text: 'Open the exact link you were sent.' },
};

/** Shows the end screen for `kind` over the desktop; returns the title for the status line. */
export function showEnd(kind: EndKind): string {
  const { title, text } = ENDS[kind];
  const end = document.getElementById('end');
  if (end) {
    end.dataset['kind'] = kind;
    (end.querySelector('h2') as HTMLElement).textContent = title;
    (end.querySelector('p') as HTMLElement).textContent = text;
    end.hidden = false;
  }
  return title;
}

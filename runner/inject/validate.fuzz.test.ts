/**
 * Property: manifest and credentials validation, fed anything, either accepts or throws the typed
 * problems (ValidationError, or E_MISSING_CREDENTIALS), each with a documented code, a path and a
 * message that quotes no credential value. Never another exception.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GrexalError, type Problem, ValidationError } from '../errors.ts';
import { resolveSandboxOptions } from '../sandbox/index.ts';
import { budget, DOCUMENTED_CODES, FUZZ_TEST_TIMEOUT_MS } from '../testing/fuzz.ts';
import { hostileValue, nearValid } from '../testing/json-mutations.ts';
import { DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { DESIGN_SECRET_VALUES, designConnections, designCredentials } from './testing/design-connections.ts';
import { validateInjectionInput } from './validate.ts';

function checkProblems(problems: readonly Problem[]): void {
  expect(problems.length).toBeGreaterThan(0);
  for (const p of problems) {
    expect(DOCUMENTED_CODES, `problem code ${p.code}`).toContain(p.code);
    expect(typeof p.path).toBe('string');
    expect(typeof p.message).toBe('string');
    expect(p.message.length).toBeGreaterThan(0);
    for (const secret of DESIGN_SECRET_VALUES)
      expect(`${p.path} ${p.message} ${p.fix ?? ''}`).not.toContain(secret);
  }
}

/** Runs `validate`; any throw but the typed ones fails the property. */
function typedOutcome(validate: () => unknown): 'accepted' | 'refused' {
  try {
    validate();
    return 'accepted';
  } catch (error) {
    if (error instanceof ValidationError) checkProblems(error.problems);
    else if (error instanceof GrexalError && error.code === 'E_MISSING_CREDENTIALS')
      checkProblems(error.details as Problem[]);
    else throw error;
    return 'refused';
  }
}

const validInput = () => ({
  manifest: { connections: designConnections() },
  credentials: designCredentials(),
});

describe('manifest and credentials validation under fuzzing', () => {
  it('accepts the valid input it mutates (so the mutations start from a passing case)', () => {
    const { manifest, credentials } = validInput();
    expect(
      typedOutcome(() => validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES)),
    ).toBe('accepted');
  });

  it(
    'answers near-valid manifests and credentials with typed problems only',
    () => {
      fc.assert(
        fc.property(nearValid(validInput), (input) => {
          const { manifest, credentials } = (input ?? {}) as { manifest?: unknown; credentials?: unknown };
          typedOutcome(() => validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES));
        }),
        budget(3000, 4000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'answers arbitrary values with typed problems only',
    () => {
      fc.assert(
        fc.property(hostileValue, hostileValue, (manifest, credentials) => {
          typedOutcome(() => validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES));
        }),
        budget(2000, 2000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'answers near-valid sandbox options with typed problems only',
    () => {
      const options = () => ({
        image: 'grexal/agent',
        command: ['node', 'agent.mjs'],
        env: { MODE: 'fast' },
        desktop: { width: 1280, height: 800 },
        limits: { memoryBytes: 512 * 1024 * 1024, cpus: 1, pidsLimit: 256, timeoutMs: 60_000 },
        stopTimeoutMs: 1000,
      });
      fc.assert(
        fc.property(nearValid(options), (input) => {
          typedOutcome(() => resolveSandboxOptions(input));
        }),
        budget(2000, 2000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});

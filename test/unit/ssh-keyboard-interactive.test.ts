// Intent: with password auth, keyboard-interactive prompts get the stored password only when they
// ask for a password with echo off; any other prompt (a one-time code, a question, an echoed
// field) gets no answer, so the login fails instead of handing the password to it.
import { describe, expect, it } from 'vitest';
import { keyboardInteractiveAnswers } from '../../src/main/ssh/auth';

describe('keyboard-interactive answers', () => {
  it('answers password prompts with echo off', () => {
    expect(keyboardInteractiveAnswers([{ prompt: 'Password: ', echo: false }], 'pw')).toEqual(['pw']);
    expect(keyboardInteractiveAnswers([{ prompt: "root@m1's password:", echo: false }], 'pw')).toEqual(['pw']);
    expect(keyboardInteractiveAnswers([{ prompt: 'PASSWORD for root', echo: false }], 'pw')).toEqual(['pw']);
    // An information-only round (no prompts) gets an empty answer.
    expect(keyboardInteractiveAnswers([], 'pw')).toEqual([]);
  });

  it('answers nothing to any other prompt', () => {
    for (const prompts of [
      [{ prompt: 'Verification code: ', echo: false }],
      [{ prompt: 'Password: ', echo: true }],
      [{ prompt: 'Username: ', echo: true }],
      [{ prompt: 'Enter PIN for token', echo: false }],
      // A password prompt next to a one-time code: the password is not given out for either.
      [
        { prompt: 'Password: ', echo: false },
        { prompt: 'OTP: ', echo: false },
      ],
    ])
      expect(keyboardInteractiveAnswers(prompts, 'pw')).toEqual([]);
  });
});

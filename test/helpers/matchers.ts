/**
 * Errors thrown by the native addon are made in Node's main realm, while jest runs tests in a separate realm, so
 * `toThrow(RangeError)` cannot match them by class. These matchers compare the error's name instead.
 */
type Kind = 'Error' | 'TypeError' | 'RangeError';

function check(error: unknown, kind: Kind, pattern?: RegExp | string) {
  const e = error as { name?: string; message?: string } | undefined;
  const nameOk = e?.name === kind;
  const messageOk = pattern === undefined || (typeof pattern === 'string' ? e?.message?.includes(pattern) : pattern.test(e?.message ?? ''));
  return {
    pass: nameOk && Boolean(messageOk),
    message: () => `expected a ${kind}${pattern ? ` matching ${pattern}` : ''}, got ${e ? `${e.name}: ${e.message}` : 'no error'}`,
  };
}

expect.extend({
  toThrowKind(received: () => unknown, kind: Kind, pattern?: RegExp | string) {
    try {
      received();
    } catch (error) {
      return check(error, kind, pattern);
    }
    return { pass: false, message: () => `expected a ${kind}, but nothing was thrown` };
  },
  async toRejectKind(received: Promise<unknown>, kind: Kind, pattern?: RegExp | string) {
    try {
      await received;
    } catch (error) {
      return check(error, kind, pattern);
    }
    return { pass: false, message: () => `expected a rejection with ${kind}, but the promise resolved` };
  },
});

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      toThrowKind(kind: Kind, pattern?: RegExp | string): R;
      toRejectKind(kind: Kind, pattern?: RegExp | string): Promise<R>;
    }
  }
}
export {};

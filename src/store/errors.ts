/**
 * The store's one error class. Thrown only when an invariant breaks (a corrupt row, an intent
 * committed inside someone else's transaction, a migration failure): expected outcomes such as a
 * duplicate fill or a missing order are returned as values by the repositories.
 */
export type StoreErrorKind = 'migration' | 'corrupt_row' | 'nested_intent_commit' | 'invalid_input' | 'counter_exhausted';

export class StoreError extends Error {
  readonly kind: StoreErrorKind;
  readonly detail: unknown;
  constructor(kind: StoreErrorKind, message: string, detail?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
    this.kind = kind;
    this.detail = detail;
  }
}

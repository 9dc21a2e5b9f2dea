/**
 * Transition coverage for model-based tests: the full set of transitions a machine defines (read
 * from its state nodes, eventless and delayed ones included) and a labelled diff against the
 * transitions an inspected actor actually took (`@xstate.microstep` carries them).
 *
 * Transitions are compared by label, not identity: `machine.provide()` builds new state nodes, so
 * the transitions a provided actor takes are not the objects of the original definition. Labels of
 * one machine are unique (checked), so the comparison is exact.
 */
import type { AnyStateMachine, AnyTransitionDefinition, InspectionEvent } from 'xstate';
import { getStateNodes } from 'xstate/graph';

/** Every transition the machine defines, keyed by a stable label. */
export function allTransitions(machine: AnyStateMachine): Map<string, AnyTransitionDefinition> {
  const out = new Map<string, AnyTransitionDefinition>();
  for (const node of [machine.root, ...getStateNodes(machine.root)]) {
    const defs: AnyTransitionDefinition[] = [];
    for (const ts of node.transitions.values()) defs.push(...ts);
    defs.push(...(node.always ?? []));
    for (const t of defs) {
      const key = transitionLabel(t);
      if (out.has(key)) throw new Error(`two transitions share the label ${key}`);
      out.set(key, t);
    }
  }
  return out;
}

/** Every atomic and compound state id the machine defines (the root excluded). */
export function allStateIds(machine: AnyStateMachine): Set<string> {
  return new Set(getStateNodes(machine.root).map((n) => n.id));
}

function guardText(g: unknown): string {
  if (g === undefined || g === null) return '';
  if (typeof g === 'string') return g;
  if (typeof g === 'function') return g.name || 'fn';
  if (typeof g === 'object' && 'type' in g) {
    const params = (g as { params?: unknown }).params;
    return `${String((g as { type: unknown }).type)}${params !== undefined && typeof params !== 'function' ? JSON.stringify(params) : ''}`;
  }
  return String(g);
}

/** `source --event [guard]--> targets`. */
export function transitionLabel(t: AnyTransitionDefinition): string {
  const guard = guardText(t.guard);
  const targets = t.target?.map((x) => x.id).join(',') ?? '(self)';
  return `${t.source.id} --${t.eventType || 'always'}${guard ? ` [${guard}]` : ''}--> ${targets}`;
}

/** Records the transitions and states an inspected actor takes. */
export class CoverageRecorder {
  readonly taken = new Set<string>();
  readonly states = new Set<string>();

  readonly inspect = (ev: InspectionEvent): void => {
    if (ev.type === '@xstate.microstep') {
      for (const t of (ev as unknown as { _transitions: AnyTransitionDefinition[] })._transitions) {
        this.taken.add(transitionLabel(t));
      }
    }
    if (ev.type === '@xstate.snapshot') {
      const snap = ev.snapshot as { _nodes?: readonly { id: string }[] };
      for (const n of snap._nodes ?? []) this.states.add(n.id);
    }
  };

  /** Labels of the machine's transitions never taken. */
  missingTransitions(machine: AnyStateMachine): string[] {
    return [...allTransitions(machine)].map(([k]) => k).filter((k) => !this.taken.has(k));
  }

  /** Ids of the machine's states never active. */
  missingStates(machine: AnyStateMachine): string[] {
    return [...allStateIds(machine)].filter((id) => !this.states.has(id));
  }
}

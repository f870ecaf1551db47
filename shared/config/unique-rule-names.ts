/**
 * The rule-name check shared by the policy file and the event rules file: names are unique
 * ignoring case, because the audit trail, log lines and system callers ("rules:<name>") name a
 * rule and must point at exactly one.
 */
import type { z } from 'zod';

/** For `.superRefine`: reports each rule whose name repeats an earlier one, at its `name` field. */
export function uniqueRuleNames(document: { rules: Array<{ name: string }> }, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  document.rules.forEach((rule, index) => {
    const key = rule.name.toLowerCase();
    if (seen.has(key))
      ctx.addIssue({
        code: 'custom',
        path: ['rules', index, 'name'],
        message: `duplicates an earlier rule name "${rule.name}"`,
      });
    seen.add(key);
  });
}

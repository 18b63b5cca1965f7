import { compileRules } from '../../quality/rules.js'
import { useRules } from '../../quality/rules-channel.js'
import { validateRules } from '../../quality/rules-validation.js'

/** Puts `rules` (as a rules file lists them, validated as a rules file is) in force in this thread. */
export function useTestRules(rules: readonly unknown[]): void {
  useRules(compileRules(validateRules({ rules }, 'test')))
}

/** Flags an impression from outside Germany. */
export const FLAG_NOT_DE = {
  name: 'imp.country',
  type: 'impression',
  kind: 'allowed',
  field: 'country',
  values: ['DE'],
  severity: 'flag',
} as const

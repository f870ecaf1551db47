/**
 * NCRONTAB schedules as Azure Functions timer triggers use them: six fields
 * `{second} {minute} {hour} {day} {month} {day-of-week}` with `*`, numbers, lists `a,b`, ranges
 * `a-b`, steps `*​/n` and `a-b/n`, and month/day names. Five-field expressions are rejected,
 * as the Functions runtime rejects them.
 */
export interface Schedule {
  expression: string;
  /** First occurrence strictly after `from` (UTC). */
  next(from: Date): Date;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  nameBase?: number;
}

const FIELDS: FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day-of-week', min: 0, max: 6, names: DAYS, nameBase: 0 },
];

export class ScheduleError extends Error {
  readonly code = 'Schedule.Invalid';
}

function parseValue(token: string, spec: FieldSpec, expression: string): number {
  const upper = token.toUpperCase();
  if (spec.names) {
    const idx = spec.names.indexOf(upper);
    if (idx >= 0) return idx + (spec.nameBase ?? 0);
  }
  if (!/^\d+$/.test(token)) throw new ScheduleError(`'${expression}': '${token}' is not a valid ${spec.name}`);
  let n = Number(token);
  if (spec.name === 'day-of-week' && n === 7) n = 0;
  if (n < spec.min || n > spec.max)
    throw new ScheduleError(`'${expression}': ${spec.name} ${n} is outside ${spec.min}-${spec.max}`);
  return n;
}

function parseField(text: string, spec: FieldSpec, expression: string): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    if (!part) throw new ScheduleError(`'${expression}': empty list item in the ${spec.name} field`);
    const [rangeText, stepText] = part.split('/');
    if (part.split('/').length > 2) throw new ScheduleError(`'${expression}': bad step in '${part}'`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1)
      throw new ScheduleError(`'${expression}': step '${stepText}' must be a positive integer`);
    let from: number;
    let to: number;
    if (rangeText === '*') {
      from = spec.min;
      to = spec.max;
    } else if (rangeText!.includes('-')) {
      const [a, b] = rangeText!.split('-');
      from = parseValue(a!, spec, expression);
      to = parseValue(b!, spec, expression);
      if (to < from) throw new ScheduleError(`'${expression}': range '${rangeText}' runs backwards`);
    } else {
      from = parseValue(rangeText!, spec, expression);
      to = stepText === undefined ? from : spec.max;
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

export function parseSchedule(expression: string): Schedule {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new ScheduleError(
      `'${expression}' has ${fields.length} fields; NCRONTAB needs 6: {second} {minute} {hour} {day} {month} {day-of-week}`,
    );
  }
  const [seconds, minutes, hours, days, months, weekdays] = fields.map((f, i) => parseField(f, FIELDS[i]!, expression));
  const dayIsStar = fields[3] === '*';
  const weekdayIsStar = fields[5] === '*';
  const dayMatches = (d: Date) => {
    const dom = days!.has(d.getUTCDate());
    const dow = weekdays!.has(d.getUTCDay());
    // Classic cron rule: when both day fields are restricted, either may match.
    if (!dayIsStar && !weekdayIsStar) return dom || dow;
    return dom && dow;
  };

  return {
    expression,
    next(from: Date): Date {
      const t = new Date(Math.floor(from.getTime() / 1000) * 1000 + 1000);
      const limit = from.getTime() + 5 * 366 * 86_400_000;
      while (t.getTime() <= limit) {
        if (!months!.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0);
          continue;
        }
        if (!dayMatches(t)) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0);
          continue;
        }
        if (!hours!.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0);
          continue;
        }
        if (!minutes!.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0);
          continue;
        }
        if (!seconds!.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1);
          continue;
        }
        return t;
      }
      throw new ScheduleError(`'${expression}' never fires`);
    },
  };
}

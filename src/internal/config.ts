/**
 * The `Config` of the options every layer shares, read by the Config layers of both entries.
 */
import * as Config from "effect/Config"
import * as Option from "effect/Option"
import type { HistoryOptions } from "./feed.js"

/** `HISTORY_CHANGES` (an integer) and `HISTORY_MAX_AGE` (a duration, such as `"3 days"`), both optional. */
export const historyConfig: Config.Config<HistoryOptions | undefined> = Config.map(
  Config.all({
    changes: Config.option(Config.integer("HISTORY_CHANGES")),
    maxAge: Config.option(Config.duration("HISTORY_MAX_AGE"))
  }),
  ({ changes, maxAge }) =>
    Option.isNone(changes) && Option.isNone(maxAge)
      ? undefined
      : { changes: Option.getOrUndefined(changes), maxAge: Option.getOrUndefined(maxAge) }
)

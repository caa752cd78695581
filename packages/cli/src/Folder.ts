import * as path from "node:path"

/** pnpm runs scripts from the workspace root; INIT_CWD is where the user typed the command. */
export const resolveFolder = (f: string): string => path.resolve(process.env.INIT_CWD ?? process.cwd(), f)

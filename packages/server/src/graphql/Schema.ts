/**
 * The executable schema: the SDL of TypeDefs with the resolvers attached field by field (a
 * resolver for a field the SDL lacks is a start-up error, not a silent no-op), and its printed
 * form for `GET /graphql/schema.graphql`.
 */
import { buildSchema, type GraphQLFieldResolver, isObjectType, printSchema } from "graphql"

import { resolvers } from "./Resolvers.js"
import { typeDefs } from "./TypeDefs.js"

const attach = (sdl: string, map: Record<string, Record<string, GraphQLFieldResolver<unknown, unknown>>>) => {
  const built = buildSchema(sdl)
  for (const [typeName, fields] of Object.entries(map)) {
    const type = built.getType(typeName)
    if (!isObjectType(type)) throw new Error(`GraphQL resolvers name ${typeName}, which the schema lacks`)
    const defined = type.getFields()
    for (const [fieldName, resolve] of Object.entries(fields)) {
      const field = defined[fieldName]
      if (field === undefined)
        throw new Error(`GraphQL resolvers name ${typeName}.${fieldName}, which the schema lacks`)
      field.resolve = resolve
    }
  }
  return built
}

export const schema = attach(typeDefs, resolvers as never)

/** The published SDL (printed from the executable schema, descriptions included). */
export const schemaText = printSchema(schema)

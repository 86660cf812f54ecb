export { redisServerArgs } from "@jobs/conformance";

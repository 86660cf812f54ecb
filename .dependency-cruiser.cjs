// Import-cycle guard for the published and private packages' sources (`pnpm check:cycles`, run by CI).
// Only imports between files under packages/*/src count; tests, examples and bench are left out.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A module reaches itself through its imports: split the shared part into a module both import.",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    includeOnly: "^packages/[^/]+/src/",
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: require("node:path").join(__dirname, "tsconfig.base.json") },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["@jobs/source", "import", "types", "default"],
      extensions: [".ts", ".js"],
    },
  },
};

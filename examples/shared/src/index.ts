export { type AppContext, type Mailer, type ReportContext, registerHandlers, registerReportHandler } from "./handlers.js";
export { buildReport, chargeCard, resizeImage, sendReminder, sendWelcomeEmail } from "./jobs.js";
export {
  checkRecords,
  type RecordsOptions,
  type RecordsResult,
  type RecordsTestOptions,
  type RecordsTestStore,
  recordsMain,
  runRecords,
  runRecordsInTest,
} from "./records.js";
export { EXPECTED_SCENARIO, runScenario, type ScenarioOptions, type ScenarioResult, scenarioMain } from "./scenario.js";

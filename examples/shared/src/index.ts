export { type AppContext, type Mailer, registerHandlers } from "./handlers.js";
export { chargeCard, resizeImage, sendReminder, sendWelcomeEmail } from "./jobs.js";
export { runScenario, type ScenarioOptions, type ScenarioResult } from "./scenario.js";

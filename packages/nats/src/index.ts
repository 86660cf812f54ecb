export { createNatsBroker, type NatsBrokerOptions, natsCapabilities } from "./nats-broker.js";

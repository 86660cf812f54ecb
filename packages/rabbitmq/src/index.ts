export { createRabbitMQBroker, type RabbitMQBroker, type RabbitMQBrokerOptions, rabbitmqCapabilities } from "./rabbitmq-broker.js";

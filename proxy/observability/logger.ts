// winston JSON logs to stderr (stdout stays free for the CLI's own output).
import winston from "winston";

export type Logger = winston.Logger;

export function createLogger(level = process.env.RAUTA_LOG_LEVEL ?? "info"): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: "rauta-proxy", pid: process.pid },
    transports: [
      new winston.transports.Console({
        stderrLevels: ["error", "warn", "info", "http", "verbose", "debug", "silly"],
      }),
    ],
  });
}

export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}

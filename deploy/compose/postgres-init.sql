-- Runs once, when the postgres volume is created: one server, two databases.
-- mlflow: MLflow's backend store (runs, registry). predictions: the API's prediction log.
CREATE DATABASE mlflow;
CREATE DATABASE predictions;

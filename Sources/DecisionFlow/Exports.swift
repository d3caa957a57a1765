// The seeded generator is part of DecisionFlow's API (weight init, dropout), and lives in its
// own small module so the environments can use it without depending on the model.
@_exported import SeededRandom

public enum DecisionFlowPlaceholder {}

//! The outside systems a service depends on, as one set of metric labels:
//! every `*_dependency_errors_total{dependency=...}` series uses these.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    Postgres,
    Redis,
    Kafka,
    /// The dead-letter topic's producer (a Kafka client of its own).
    DeadLetter,
}

impl Dependency {
    pub fn label(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Kafka => "kafka",
            Self::DeadLetter => "dlq",
        }
    }
}

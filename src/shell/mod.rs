//! Thin entry points over the same core: local files, the SQS worker, the Lambda function.

pub mod render;

//! The roles on librdkafka's in-process mock cluster: fast, no setup. The
//! same paths run against a real broker over TCP in the binary's tests.

mod mock_cluster;

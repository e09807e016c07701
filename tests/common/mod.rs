pub mod tfevents;

//! Rule files: loading, validation and the templates of labels and annotations.

pub mod template;

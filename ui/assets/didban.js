// Didban's one script: progressive enhancement only. Every page works without it.
"use strict";

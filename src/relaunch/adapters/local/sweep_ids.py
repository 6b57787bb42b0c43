"""How a local sweep's id looks: runs hold it where a training job's id would be, and `owns` tells them apart."""

PREFIX = "sweep-"

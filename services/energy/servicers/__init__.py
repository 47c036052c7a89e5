"""gRPC servicers of the energy service: protobuf in, domain calls, protobuf out."""
